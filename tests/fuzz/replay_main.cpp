// Runs a fuzz target over committed inputs without libFuzzer, so that gcc builds can replay the
// corpora as a regression test (`make test`). Usage: <target>_replay DIR_OR_FILE...
// Directories are read one level deep, in name order; files whose names start with '.' are
// skipped. A crash or failed invariant aborts, which fails the test; so does finding no input,
// so that a wrong corpus path cannot pass in silence, and so does an input that runs longer than
// SSEGW_FUZZ_REPLAY_TIMEOUT seconds (default 10): a hang found by fuzzing (yaml-cpp's endless
// loop on ",", which also eats memory) fails fast instead of running the machine out of memory.

#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>
#include <vector>

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size);

namespace fs = std::filesystem;

namespace {

// The input being run, for the timeout message (written from the signal handler).
char current[4096];

void on_alarm(int) {
  static const char kPrefix[] = "replay: TIMEOUT (a hang) on ";
  ssize_t ignored = write(STDERR_FILENO, kPrefix, sizeof kPrefix - 1);
  ignored = write(STDERR_FILENO, current, std::strlen(current));
  ignored = write(STDERR_FILENO, "\n", 1);
  (void)ignored;
  _exit(1);
}

unsigned timeout_seconds() {
  const char* env = std::getenv("SSEGW_FUZZ_REPLAY_TIMEOUT");
  int n = env ? std::atoi(env) : 0;
  return n > 0 ? static_cast<unsigned>(n) : 10;
}

bool run_file(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    std::fprintf(stderr, "replay: cannot read %s\n", path.c_str());
    return false;
  }
  std::vector<char> bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  // An exact-size heap copy, as libFuzzer gives: ASan then sees any read past the end.
  auto* data = new uint8_t[bytes.size() ? bytes.size() : 1];
  std::copy(bytes.begin(), bytes.end(), data);
  std::fprintf(stderr, "replay: %s (%zu bytes)\n", path.c_str(), bytes.size());
  std::snprintf(current, sizeof current, "%s", path.c_str());
  alarm(timeout_seconds());
  LLVMFuzzerTestOneInput(data, bytes.size());
  alarm(0);
  delete[] data;
  return true;
}

}  // namespace

int main(int argc, char** argv) {
  signal(SIGALRM, on_alarm);
  size_t runs = 0;
  for (int i = 1; i < argc; ++i) {
    fs::path arg(argv[i]);
    std::error_code ec;
    if (fs::is_directory(arg, ec)) {
      std::vector<fs::path> files;
      for (const auto& entry : fs::directory_iterator(arg)) {
        if (!entry.is_regular_file()) continue;
        if (entry.path().filename().string().starts_with(".")) continue;
        files.push_back(entry.path());
      }
      std::sort(files.begin(), files.end());
      for (const fs::path& f : files) {
        if (!run_file(f)) return 1;
        ++runs;
      }
    } else if (fs::is_regular_file(arg, ec)) {
      if (!run_file(arg)) return 1;
      ++runs;
    } else {
      std::fprintf(stderr, "replay: no such file or directory: %s\n", argv[i]);
      return 1;
    }
  }
  if (runs == 0) {
    std::fprintf(stderr, "replay: no inputs\n");
    return 1;
  }
  std::printf("replay: %zu inputs, no failure\n", runs);
  return 0;
}
