#include "npz.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <array>
#include <bit>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <set>
#include <sstream>
#include <stdexcept>

namespace tg::nn {

static_assert(std::endian::native == std::endian::little,
              "tapegrad's .npz code assumes little-endian");

namespace {

// ---- CRC-32 (the zip polynomial 0xEDB88320) ------------------------------------------------

std::uint32_t crc32(const char* data, std::size_t n) {
  static const auto table = [] {
    std::array<std::uint32_t, 256> t{};
    for (std::uint32_t i = 0; i < 256; ++i) {
      std::uint32_t c = i;
      for (int k = 0; k < 8; ++k) c = (c & 1) ? 0xEDB88320u ^ (c >> 1) : c >> 1;
      t[i] = c;
    }
    return t;
  }();
  std::uint32_t c = 0xFFFFFFFFu;
  for (std::size_t i = 0; i < n; ++i)
    c = table[(c ^ static_cast<unsigned char>(data[i])) & 0xFF] ^ (c >> 8);
  return c ^ 0xFFFFFFFFu;
}

std::size_t itemsize(const std::string& dtype) {
  if (dtype == "<f4") return 4;
  if (dtype == "<f8" || dtype == "<i8") return 8;
  if (dtype == "|u1") return 1;
  return 0;
}

// ---- .npy ---------------------------------------------------------------------------------

std::string npy_bytes(const NpyArray& a) {
  std::string shape = "(";
  for (std::size_t d : a.shape) shape += std::to_string(d) + ", ";
  if (a.shape.size() == 1) shape.erase(shape.size() - 1);  // "(3,)"
  else if (!a.shape.empty()) shape.erase(shape.size() - 2);
  shape += ")";
  std::string header =
      "{'descr': '" + a.dtype + "', 'fortran_order': False, 'shape': " + shape + ", }";
  const std::size_t unpadded = 10 + header.size() + 1;  // magic, version, length, header, '\n'
  header.append((64 - unpadded % 64) % 64, ' ');
  header += '\n';
  std::string out = "\x93NUMPY";
  out += '\x01';
  out += '\x00';
  const auto len = static_cast<std::uint16_t>(header.size());
  out += static_cast<char>(len & 0xFF);
  out += static_cast<char>(len >> 8);
  return out + header + a.bytes;
}

// Parses one .npy member; `where` prefixes errors.
NpyArray parse_npy(const std::string& data, const std::string& where) {
  const auto bad = [&](const std::string& what) -> NpyArray {
    throw std::runtime_error(where + ": " + what);
  };
  if (data.size() < 10 || data.compare(0, 6, "\x93NUMPY") != 0)
    return bad("not a .npy array (bad magic)");
  const int major = static_cast<unsigned char>(data[6]);
  std::size_t len = 0, start = 0;
  if (major == 1) {
    len = static_cast<unsigned char>(data[8]) | (static_cast<unsigned char>(data[9]) << 8);
    start = 10;
  } else if (major == 2 || major == 3) {
    if (data.size() < 12) return bad("truncated .npy header");
    for (int i = 3; i >= 0; --i) len = (len << 8) | static_cast<unsigned char>(data[8 + i]);
    start = 12;
  } else {
    return bad(".npy version " + std::to_string(major) + " is not supported");
  }
  if (len > data.size() - start) return bad("truncated .npy header");
  const std::string header = data.substr(start, len);
  NpyArray a;
  const auto value_after = [&](const std::string& key) {
    const auto k = header.find("'" + key + "'");
    if (k == std::string::npos) bad(".npy header has no '" + key + "': " + header);
    auto colon = header.find(':', k);
    if (colon == std::string::npos) bad(".npy header is malformed: " + header);
    return colon + 1;
  };
  {
    auto p = header.find('\'', value_after("descr"));
    auto q = p == std::string::npos ? p : header.find('\'', p + 1);
    if (q == std::string::npos) return bad(".npy header is malformed: " + header);
    a.dtype = header.substr(p + 1, q - p - 1);
    if (a.dtype == "<u1") a.dtype = "|u1";
    if (itemsize(a.dtype) == 0)
      return bad("dtype '" + a.dtype + "' is not supported (float32, float64, int64, uint8 are)");
  }
  if (header.compare(header.find_first_not_of(' ', value_after("fortran_order")), 4, "True") == 0)
    return bad("Fortran-order arrays are not supported");
  {
    auto p = header.find('(', value_after("shape"));
    auto q = p == std::string::npos ? p : header.find(')', p);
    if (q == std::string::npos) return bad(".npy header is malformed: " + header);
    std::size_t i = p + 1;
    while (i < q) {
      while (i < q && (header[i] == ' ' || header[i] == ',')) ++i;
      if (i == q) break;
      std::size_t d = 0, digits = 0;
      while (i < q && header[i] >= '0' && header[i] <= '9' && digits < 15) {
        d = d * 10 + static_cast<std::size_t>(header[i++] - '0');
        ++digits;
      }
      if (digits == 0 || (i < q && header[i] != ',' && header[i] != ' '))
        return bad(".npy shape is malformed: " + header);
      a.shape.push_back(d);
    }
  }
  std::size_t count = 1;
  for (std::size_t d : a.shape) {
    if (d != 0 && count > (std::size_t(1) << 40) / d) return bad(".npy shape is too large");
    count *= d;
  }
  const std::size_t want = count * itemsize(a.dtype), have = data.size() - start - len;
  if (have != want)
    return bad("array data is " + std::to_string(have) + " bytes, shape " + shape_str(a.shape) +
               " of " + a.dtype + " needs " + std::to_string(want));
  a.bytes = data.substr(start + len);
  return a;
}

// ---- zip ----------------------------------------------------------------------------------

void put16(std::string& s, std::uint32_t v) {
  s += static_cast<char>(v & 0xFF);
  s += static_cast<char>((v >> 8) & 0xFF);
}

void put32(std::string& s, std::uint32_t v) {
  put16(s, v & 0xFFFF);
  put16(s, v >> 16);
}

std::uint32_t get16(const std::string& s, std::size_t at) {
  return static_cast<unsigned char>(s[at]) | (static_cast<unsigned char>(s[at + 1]) << 8);
}

std::uint32_t get32(const std::string& s, std::size_t at) {
  return get16(s, at) | (get16(s, at + 2) << 16);
}

constexpr std::uint32_t kLocal = 0x04034b50, kCentral = 0x02014b50, kEnd = 0x06054b50;

}  // namespace

NpyArray to_npy(const AnyArray& any) {
  return std::visit(
      [](const auto& a) {
        using T = typename std::decay_t<decltype(a)>::value_type;
        NpyArray n{std::is_same_v<T, float> ? "<f4" : "<f8", a.shape(), {}};
        n.bytes.assign(reinterpret_cast<const char*>(a.data()), a.size() * sizeof(T));
        return n;
      },
      any);
}

NpyArray text_to_npy(const std::string& text) { return {"|u1", Shape{text.size()}, text}; }

NpyArray int_to_npy(std::int64_t value) {
  return {"<i8", Shape{}, std::string(reinterpret_cast<const char*>(&value), 8)};
}

AnyArray npy_to_array(const NpyArray& a, const std::string& what) {
  const auto fill = [&]<class T>() {
    Array<T> out = Array<T>::from_shape(a.shape);
    std::memcpy(out.data(), a.bytes.data(), a.bytes.size());
    return AnyArray(std::move(out));
  };
  if (a.dtype == "<f4") return fill.template operator()<float>();
  if (a.dtype == "<f8") return fill.template operator()<double>();
  throw std::runtime_error(what + ": dtype " + a.dtype + " where float32 or float64 was expected");
}

std::string npy_to_text(const NpyArray& a, const std::string& what) {
  if (a.dtype != "|u1" || a.shape.size() != 1)
    throw std::runtime_error(what + ": expected text (a 1-d uint8 array)");
  return a.bytes;
}

std::int64_t npy_to_int(const NpyArray& a, const std::string& what) {
  if (a.dtype != "<i8" || a.bytes.size() != 8)
    throw std::runtime_error(what + ": expected one int64 value");
  std::int64_t v;
  std::memcpy(&v, a.bytes.data(), 8);
  return v;
}

void write_npz(const std::string& path, const NpzEntries& entries) {
  std::string zip, central;
  std::set<std::string> names;
  for (const auto& [name, array] : entries) {
    if (name.empty() || !names.insert(name).second)
      throw std::invalid_argument("write_npz: " + path + ": entry name '" + name +
                                  "' is empty or repeated");
    if (itemsize(array.dtype) == 0 ||
        array.bytes.size() != shape_numel(array.shape) * itemsize(array.dtype))
      throw std::invalid_argument("write_npz: " + path + ": entry '" + name +
                                  "' is not a valid array");
    const std::string file = name + ".npy", data = npy_bytes(array);
    if (data.size() >= 0xFFFFFFFFu || zip.size() >= 0xFFFFFFFFu)
      throw std::invalid_argument("write_npz: " + path + ": over 4 GiB (zip64 is not supported)");
    const std::uint32_t crc = crc32(data.data(), data.size()),
                        size = static_cast<std::uint32_t>(data.size());
    const std::uint32_t offset = static_cast<std::uint32_t>(zip.size());
    // Local header: signature, version 2.0, flags, method 0 (stored), time, date 1980-01-01.
    put32(zip, kLocal);
    put16(zip, 20);
    put16(zip, 0);
    put16(zip, 0);
    put16(zip, 0);
    put16(zip, 0x21);
    put32(zip, crc);
    put32(zip, size);
    put32(zip, size);
    put16(zip, static_cast<std::uint32_t>(file.size()));
    put16(zip, 0);
    zip += file;
    zip += data;
    put32(central, kCentral);
    put16(central, 20);
    put16(central, 20);
    put16(central, 0);
    put16(central, 0);
    put16(central, 0);
    put16(central, 0x21);
    put32(central, crc);
    put32(central, size);
    put32(central, size);
    put16(central, static_cast<std::uint32_t>(file.size()));
    put16(central, 0);
    put16(central, 0);
    put16(central, 0);
    put16(central, 0);
    put32(central, 0);
    put32(central, offset);
    central += file;
  }
  const auto cd_offset = static_cast<std::uint32_t>(zip.size());
  zip += central;
  put32(zip, kEnd);
  put16(zip, 0);
  put16(zip, 0);
  put16(zip, static_cast<std::uint32_t>(entries.size()));
  put16(zip, static_cast<std::uint32_t>(entries.size()));
  put32(zip, static_cast<std::uint32_t>(central.size()));
  put32(zip, cd_offset);
  put16(zip, 0);

  // Write beside the target, flush to disk, then rename over it: all or nothing.
  const std::string tmp = path + ".tmp." + std::to_string(::getpid());
  const int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
  if (fd < 0)
    throw std::runtime_error(path + ": cannot create " + tmp + ": " + std::strerror(errno));
  std::size_t done = 0;
  while (done < zip.size()) {
    const ssize_t n = ::write(fd, zip.data() + done, zip.size() - done);
    if (n <= 0) {
      const std::string why = std::strerror(errno);
      ::close(fd);
      ::unlink(tmp.c_str());
      throw std::runtime_error(path + ": write failed: " + why);
    }
    done += static_cast<std::size_t>(n);
  }
  if (::fsync(fd) != 0 || ::close(fd) != 0) {
    ::unlink(tmp.c_str());
    throw std::runtime_error(path + ": could not flush to disk: " + std::strerror(errno));
  }
  if (std::rename(tmp.c_str(), path.c_str()) != 0) {
    const std::string why = std::strerror(errno);
    ::unlink(tmp.c_str());
    throw std::runtime_error(path + ": could not rename the temporary file into place: " + why);
  }
  const auto slash = path.find_last_of('/');
  const std::string dir = slash == std::string::npos ? "." : path.substr(0, slash + 1);
  if (const int dfd = ::open(dir.c_str(), O_RDONLY); dfd >= 0) {  // make the rename durable
    ::fsync(dfd);
    ::close(dfd);
  }
}

NpzEntries read_npz(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw std::runtime_error(path + ": cannot open: " + std::strerror(errno));
  std::ostringstream buffer;
  buffer << in.rdbuf();
  const std::string z = buffer.str();
  const auto bad = [&](const std::string& what) -> NpzEntries {
    throw std::runtime_error(path + ": " + what + " (truncated or corrupt?)");
  };
  // The end-of-central-directory record: 22 bytes plus a comment of at most 65535.
  if (z.size() < 22) return bad("too short to be an .npz file");
  std::size_t end = std::string::npos;
  for (std::size_t at = z.size() - 22 + 1; at-- > 0 && z.size() - at <= 22 + 65535;)
    if (get32(z, at) == kEnd) {
      end = at;
      break;
    }
  if (end == std::string::npos) return bad("no zip directory found");
  const std::size_t count = get16(z, end + 10), cd_size = get32(z, end + 12),
                    cd_offset = get32(z, end + 16);
  if (cd_offset > end || cd_size > end - cd_offset)
    return bad("the zip directory points outside the file");

  NpzEntries out;
  std::set<std::string> names;
  std::size_t at = cd_offset;
  for (std::size_t i = 0; i < count; ++i) {
    if (at + 46 > cd_offset + cd_size || get32(z, at) != kCentral)
      return bad("zip directory entry " + std::to_string(i) + " is damaged");
    const std::uint32_t method = get16(z, at + 10), crc = get32(z, at + 16);
    const std::size_t comp = get32(z, at + 20), size = get32(z, at + 24);
    const std::size_t name_len = get16(z, at + 28), extra_len = get16(z, at + 30),
                      comment_len = get16(z, at + 32);
    const std::size_t local = get32(z, at + 42);
    if (at + 46 + name_len > cd_offset + cd_size)
      return bad("zip directory entry " + std::to_string(i) + " is damaged");
    std::string name = z.substr(at + 46, name_len);
    at += 46 + name_len + extra_len + comment_len;
    if (method != 0)
      throw std::runtime_error(path + ": entry '" + name +
                               "' is compressed; only uncompressed .npz "
                               "(numpy.savez, not savez_compressed) is supported");
    if (comp != size || size == 0xFFFFFFFFu)
      return bad("entry '" + name + "' has inconsistent sizes");
    if (local + 30 > z.size() || get32(z, local) != kLocal)
      return bad("entry '" + name + "' has no local header");
    const std::size_t data = local + 30 + get16(z, local + 26) + get16(z, local + 28);
    if (data > z.size() || size > z.size() - data)
      return bad("entry '" + name + "' runs past the end of the file");
    if (crc32(z.data() + data, size) != crc)
      return bad("entry '" + name + "' fails its CRC-32 check");
    if (name.size() < 5 || name.compare(name.size() - 4, 4, ".npy") != 0)
      return bad("entry '" + name + "' is not a .npy array");
    name.resize(name.size() - 4);
    if (!names.insert(name).second) return bad("entry '" + name + "' appears twice");
    out.emplace_back(name, parse_npy(z.substr(data, size), path + ": '" + name + "'"));
  }
  return out;
}

}  // namespace tg::nn
