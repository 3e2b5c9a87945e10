// A fresh directory under the system temp dir, removed with its contents on
// destruction, so every test works on files of its own.
#pragma once

#include <cstdlib>
#include <filesystem>
#include <stdexcept>
#include <string>

namespace memsync::testing {

/// Creates a fresh directory "<system temp>/<prefix>-XXXXXX" and returns its
/// path; the caller removes it.
inline std::string make_temp_directory(const std::string& prefix = "memsync") {
  auto pattern = (std::filesystem::temp_directory_path() / (prefix + "-XXXXXX")).string();
  if (mkdtemp(pattern.data()) == nullptr)
    throw std::runtime_error("mkdtemp failed");
  return pattern;
}

/// A fresh directory, removed with its contents on destruction.
class temp_dir {
public:
  temp_dir() : path_(make_temp_directory()) {}
  temp_dir(const temp_dir&) = delete;
  temp_dir& operator=(const temp_dir&) = delete;
  ~temp_dir() {
    std::error_code ec;
    std::filesystem::remove_all(path_, ec);
  }

  const std::string& path() const { return path_; }
  std::string file(const std::string& name) const { return path_ + "/" + name; }

private:
  std::string path_;
};

} // namespace memsync::testing
