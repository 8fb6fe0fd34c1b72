// Model files: one .npz that holds everything needed to use a trained model again, readable
// from C++ (ModelFile) and from Python (numpy.load):
//
//   "format"      the format version (kModelFormat), as text
//   "kind"        which model: "tagger", "sentiment", "translator", or your own
//   "options"     the model's options, a "name=value" line each
//   "command"     the command line that trained it
//   other names   texts: vocabularies ("vocab/words"), anything else a model needs
//   "param/NAME"  the parameters, by their module names
//
// Options are written and read by one list of fields that the options struct keeps itself:
//
//   struct MyOptions {
//     std::size_t d_model = 128;
//     double dropout = 0.1;
//     template <class F> void fields(F&& f) { f("d_model", d_model); f("dropout", dropout); }
//   };
//   file.set_options(options);   ...   file.get_options(options);
//
// so adding an option is one line there.  An option a file lacks keeps the struct's default
// (files written before the option existed); a file of a newer format is refused.
#pragma once

#include <map>
#include <stdexcept>
#include <string>
#include <vector>

#include "../../autograd/named_enum.hpp"
#include "../module.hpp"
#include "npz.hpp"

namespace tg::nn {

// 1: files of tapegrad 0.1's programs ("settings" text, no version); 2: this layout; 3: the same
// layout holding what a format-2 reader would misread (a translator's subword model, or its
// non-autoregressive decoder; a language model's pieces).  kModelFormat is the newest this tapegrad
// reads; it writes 2 unless the file asks for more (ModelFile::require_format).
constexpr int kModelFormat = 3;

// An option's value as text, and back; `what` names the file and option in errors.  An enum
// with a table of names (autograd/named_enum.hpp) is an option by its names.
std::string option_text(std::size_t value);
std::string option_text(double value);
std::string option_text(bool value);
std::string option_text(const std::string& value);
void parse_option(const std::string& text, std::size_t& value, const std::string& what);
void parse_option(const std::string& text, double& value, const std::string& what);
void parse_option(const std::string& text, bool& value, const std::string& what);
void parse_option(const std::string& text, std::string& value, const std::string& what);
template <NamedEnum E>
std::string option_text(E value) {
  return enum_name(value);
}
template <NamedEnum E>
void parse_option(const std::string& text, E& value, const std::string& what) {
  try {
    value = enum_from_name<E>(text);
  } catch (const std::exception& e) {
    throw std::runtime_error(what + ": " + e.what());
  }
}

class ModelFile {
 public:
  // A new file of this kind, to fill in and save.
  explicit ModelFile(std::string kind);
  // Reads `path`; throws naming the file when it is not a model file, is of another kind than
  // `kind`, or of a newer format.
  static ModelFile read(const std::string& path, const std::string& kind);

  const std::string& kind() const { return kind_; }
  int format() const { return format_; }
  const std::string& path() const { return path_; }  // empty until read or saved

  template <class Options>
  void set_options(Options options) {  // by value: fields() hands out references
    options.fields(
        [&](const char* name, const auto& value) { options_[name] = option_text(value); });
  }
  template <class Options>
  void get_options(Options& options) const {
    options.fields([&](const char* name, auto& value) {
      if (const auto it = options_.find(name); it != options_.end())
        parse_option(it->second, value, path_ + ": option '" + name + "'");
    });
  }
  bool has_option(const std::string& name) const { return options_.count(name) > 0; }
  // One option outside any struct (an ensemble's "members"): its value, or `fallback`.
  template <class T>
  void set_option(const std::string& name, const T& value) {
    options_[name] = option_text(value);
  }
  template <class T>
  T option(const std::string& name, T fallback) const {
    if (const auto it = options_.find(name); it != options_.end())
      parse_option(it->second, fallback, path_ + ": option '" + name + "'");
    return fallback;
  }

  void set_text(const std::string& name, const std::string& text) { texts_[name] = text; }
  const std::string& text(const std::string& name) const;  // throws naming the file if missing
  bool has_text(const std::string& name) const { return texts_.count(name) > 0; }
  // The file holds something older readers would misread: save() writes this format, so that
  // they refuse the file by its number instead.
  void require_format(int format) { written_format_ = std::max(written_format_, format); }

  // The command line that made the model ("tapegrad-tagger train --data ..."), or "".
  void set_command(const std::string& command) { command_ = command; }
  const std::string& command() const { return command_; }

  // Writes the file with `model`'s parameters (a temporary file renamed into place).
  void save(const std::string& path, const nn::Module& model);
  // Loads the parameters into `model`: every name, shape and dtype must match (all or nothing).
  void load_parameters(nn::Module& model) const;
  // The same, then `model` in evaluation mode (no dropout): ready to predict.
  void load_for_inference(nn::Module& model) const;

 private:
  std::string kind_, path_, command_;
  int format_ = kModelFormat, written_format_ = 2;
  std::map<std::string, std::string> options_, texts_;
  nn::NpzEntries parameters_;
};

// The command line as one string, arguments with spaces or quotes in single quotes.
std::string command_line(int argc, char** argv);

}  // namespace tg::nn
