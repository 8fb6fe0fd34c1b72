#include "model_file.hpp"

#include <algorithm>
#include <cstdio>
#include <sstream>
#include <stdexcept>

#include "checkpoint.hpp"

namespace tg::nn {
namespace {

const char* const kParam = "param/";

// "name=value" lines.
std::map<std::string, std::string> parse_lines(const std::string& text, const std::string& where) {
  std::map<std::string, std::string> out;
  std::istringstream in(text);
  std::size_t n = 0;
  for (std::string line; std::getline(in, line);) {
    ++n;
    const auto eq = line.find('=');
    if (eq == std::string::npos)
      throw std::runtime_error(where + ": line " + std::to_string(n) + " has no '='");
    out[line.substr(0, eq)] = line.substr(eq + 1);
  }
  return out;
}

std::string lines_text(const std::map<std::string, std::string>& m) {
  std::string out;
  for (const auto& [k, v] : m) out += k + "=" + v + "\n";
  return out;
}

bool starts_with(const std::string& s, const std::string& prefix) {
  return s.rfind(prefix, 0) == 0;
}

}  // namespace

// ---- option values --------------------------------------------------------------------------

std::string option_text(std::size_t value) { return std::to_string(value); }
std::string option_text(bool value) { return value ? "1" : "0"; }
std::string option_text(const std::string& value) { return value; }
std::string option_text(double value) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.17g", value);  // reads back to the same double
  return buf;
}

void parse_option(const std::string& text, std::size_t& value, const std::string& what) {
  std::size_t used = 0;
  try {
    if (!text.empty() && text[0] != '-') value = std::stoul(text, &used);
  } catch (const std::exception&) {
  }
  if (used == 0 || used != text.size())
    throw std::runtime_error(what + " is '" + text + "', not a count");
}

void parse_option(const std::string& text, double& value, const std::string& what) {
  std::size_t used = 0;
  try {
    value = std::stod(text, &used);
  } catch (const std::exception&) {
  }
  if (used == 0 || used != text.size())
    throw std::runtime_error(what + " is '" + text + "', not a number");
}

void parse_option(const std::string& text, bool& value, const std::string& what) {
  if (text != "0" && text != "1") throw std::runtime_error(what + " is '" + text + "', not 0 or 1");
  value = text == "1";
}

void parse_option(const std::string& text, std::string& value, const std::string&) { value = text; }

// ---- files ----------------------------------------------------------------------------------

ModelFile::ModelFile(std::string kind) : kind_(std::move(kind)) {}

ModelFile ModelFile::read(const std::string& path, const std::string& kind) {
  ModelFile f("");
  f.path_ = path;
  nn::NpzEntries all = nn::read_npz(path);
  const auto has = [&](const std::string& name) {
    return std::any_of(all.begin(), all.end(), [&](const auto& e) { return e.first == name; });
  };
  if (!has("kind") && !has("settings"))
    throw std::runtime_error(
        path +
        ": not a tapegrad model file (it says no kind of model; a checkpoint or a "
        "parameter file holds no vocabularies or options)");
  std::map<std::string, std::string> entries;  // the texts, by name
  for (auto& [name, array] : all) {
    if (starts_with(name, kParam)) f.parameters_.emplace_back(name, std::move(array));
    else entries[name] = nn::npy_to_text(array, path + ": '" + name + "'");
  }
  const auto take = [&](const std::string& name) {
    const auto it = entries.find(name);
    if (it == entries.end()) return std::string();
    std::string text = it->second;
    entries.erase(it);
    return text;
  };
  std::size_t format = 1;  // files written before "format" existed
  if (const std::string text = take("format"); !text.empty())
    parse_option(text, format, path + ": 'format'");
  f.format_ = static_cast<int>(std::min<std::size_t>(format, 1 << 20));
  if (f.format_ > kModelFormat)
    throw std::runtime_error(path + ": a model file of format " + std::to_string(f.format_) +
                             "; this tapegrad reads up to " + std::to_string(kModelFormat) +
                             " (update tapegrad)");
  if (f.format_ == 1) {  // the options and the kind were one "settings" text
    f.options_ = parse_lines(take("settings"), path + ": 'settings'");
    f.kind_ = f.options_["kind"];
    f.options_.erase("kind");
  } else {
    f.kind_ = take("kind");
    f.options_ = parse_lines(take("options"), path + ": 'options'");
    f.command_ = take("command");
  }
  if (f.kind_.empty())
    throw std::runtime_error(path + ": not a tapegrad model file (it says no kind of model)");
  if (f.kind_ != kind)
    throw std::runtime_error(path + ": a " + f.kind_ + " model, not a " + kind + " model");
  f.texts_ = std::move(entries);
  return f;
}

const std::string& ModelFile::text(const std::string& name) const {
  const auto it = texts_.find(name);
  if (it == texts_.end())
    throw std::runtime_error((path_.empty() ? "model file" : path_) + ": has no '" + name +
                             "' (not a " + kind_ + " model file of this tapegrad?)");
  return it->second;
}

void ModelFile::save(const std::string& path, const nn::Module& model) {
  nn::NpzEntries entries{{"format", nn::text_to_npy(std::to_string(written_format_))},
                         {"kind", nn::text_to_npy(kind_)},
                         {"options", nn::text_to_npy(lines_text(options_))},
                         {"command", nn::text_to_npy(command_)}};
  for (const auto& [name, text] : texts_) entries.emplace_back(name, nn::text_to_npy(text));
  for (auto& e : nn::parameter_entries(model, kParam)) entries.push_back(std::move(e));
  nn::write_npz(path, entries);
  path_ = path;
  format_ = written_format_;
}

void ModelFile::load_parameters(nn::Module& model) const {
  nn::load_parameters(model, parameters_, path_, kParam);
}

void ModelFile::load_for_inference(nn::Module& model) const {
  load_parameters(model);
  model.eval();
}

std::string command_line(int argc, char** argv) {
  std::string out;
  for (int i = 0; i < argc; ++i) {
    std::string a = argv[i];
    if (a.empty() || a.find_first_of(" \t'\"$\\") != std::string::npos) {
      std::string quoted = "'";
      for (char c : a) quoted += c == '\'' ? std::string("'\\''") : std::string(1, c);
      a = quoted + "'";
    }
    out += (i ? " " : "") + a;
  }
  return out;
}

}  // namespace tg::nn
