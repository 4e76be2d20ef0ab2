// `nnc compile`: which functions a library holds, and the build of it: the
// object codegen writes, the glue compiled by the system's C compiler, the
// library's runtime (libnnc_aot_runtime.a), one partially linked object with
// every symbol but the model's API made local, and from it lib<model>.a and
// lib<model>.so. Everything is built in a scratch directory inside the
// output directory and renamed into place at the end, so a failure leaves
// nothing behind.
#include "tools/AotLibrary.h"

#include "runtime/Checkpoint.h"
#include "runtime/FileUtil.h"

#include <fmt/format.h>

#include <cctype>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fcntl.h>
#include <filesystem>
#include <fstream>
#include <spawn.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

extern char **environ;

#ifndef NNC_AOT_RUNTIME_ARCHIVE
#error "the build names the library runtime (NNC_AOT_RUNTIME_ARCHIVE)"
#endif

namespace nnc::driver {

namespace fs = std::filesystem;

namespace {

/// Where the library runtime and its header are: beside the nnc build, or
/// $NNC_AOT_RUNTIME_DIR (holding libnnc_aot_runtime.a and nnc_aot.h).
std::pair<std::string, std::string> runtimeFiles() {
  if (const char *d = getenv("NNC_AOT_RUNTIME_DIR"); d && *d)
    return {std::string(d) + "/libnnc_aot_runtime.a", std::string(d) + "/nnc_aot.h"};
  return {NNC_AOT_RUNTIME_ARCHIVE, NNC_AOT_RUNTIME_HEADER};
}

/// Runs `argv` (found on PATH), its output captured; throws runtime::Error
/// naming the command and quoting its output when it fails.
void run(const std::vector<std::string> &argv, const std::string &scratch) {
  std::string log = scratch + "/tool.log";
  posix_spawn_file_actions_t fa;
  posix_spawn_file_actions_init(&fa);
  posix_spawn_file_actions_addopen(&fa, 1, log.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
  posix_spawn_file_actions_adddup2(&fa, 1, 2);
  std::vector<char *> args;
  for (const std::string &a : argv)
    args.push_back(const_cast<char *>(a.c_str()));
  args.push_back(nullptr);
  pid_t pid;
  int rc = posix_spawnp(&pid, args[0], &fa, nullptr, args.data(), environ);
  posix_spawn_file_actions_destroy(&fa);
  if (rc != 0)
    throw runtime::Error(fmt::format("cannot run '{}': {} (nnc compile needs a C compiler and binutils: Debian "
                                     "packages gcc, g++ and binutils)",
                                     argv[0], std::strerror(rc)));
  int status = 0;
  waitpid(pid, &status, 0);
  if (WIFEXITED(status) && WEXITSTATUS(status) == 0)
    return;
  std::string cmd, out;
  for (const std::string &a : argv)
    cmd += (cmd.empty() ? "" : " ") + a;
  try {
    out = runtime::readFile(log);
  } catch (const runtime::Error &) {
  }
  if (out.size() > 4000)
    out = out.substr(0, 4000) + "\n...";
  throw runtime::Error(fmt::format("'{}' failed:\n{}", cmd, out));
}

std::string cIdentifier(const std::string &name) {
  std::string s;
  for (char c : name)
    s += std::isalnum(static_cast<unsigned char>(c)) ? char(std::tolower(static_cast<unsigned char>(c))) : '_';
  if (s.empty() || std::isdigit(static_cast<unsigned char>(s[0])))
    s = "m_" + s;
  return s;
}

/// A scratch directory inside `dir`, removed with everything in it when
/// this goes out of scope.
struct Scratch {
  std::string path;
  explicit Scratch(const std::string &dir) {
    std::string tmpl = dir + "/.nnc-compile-XXXXXX";
    std::vector<char> buf(tmpl.begin(), tmpl.end());
    buf.push_back('\0');
    if (!mkdtemp(buf.data()))
      throw runtime::Error(fmt::format("cannot write into '{}': {}", dir, std::strerror(errno)));
    path = buf.data();
  }
  ~Scratch() {
    std::error_code ec;
    fs::remove_all(path, ec);
  }
};

void writeText(const std::string &path, const std::string &text) {
  std::ofstream f(path, std::ios::binary);
  f << text;
  if (!f.flush())
    throw runtime::Error(fmt::format("cannot write '{}'", path));
}

} // namespace

LibraryApi libraryApi(const CompiledModel &m, int64_t batch) {
  LibraryApi api;
  api.prefix = cIdentifier(m.lowered.name);
  api.guard = api.prefix;
  for (char &c : api.guard)
    c = char(std::toupper(static_cast<unsigned char>(c)));
  // (Every input and label has the batch first: Session refuses others.)
  auto add = [&](const char *fn, int64_t b) {
    if (!m.module.get(fn))
      return;
    api.functions.push_back({&m.function(fn), m.bindings(b), fmt::format("{}_{}_b{}", api.prefix, fn, b), true});
  };
  add("predict", batch);
  add("evaluate", batch);
  if (batch != 1)
    add("evaluate", 1);
  add("train_step", batch);
  return api;
}

LibraryReport buildLibrary(Session &session, const std::map<std::string, std::string> &metadata,
                           const std::map<std::string, runtime::Tensor> &dataTensors, const LibraryOptions &o,
                           const std::string &source) {
  auto start = std::chrono::steady_clock::now();
  const CompiledModel &m = session.model();
  struct stat st;
  if (stat(o.outDir.c_str(), &st) != 0 || !S_ISDIR(st.st_mode))
    throw runtime::Error(fmt::format("cannot write into '{}': no such directory", o.outDir));
  auto [archive, header] = runtimeFiles();
  if (access(archive.c_str(), R_OK) != 0 || access(header.c_str(), R_OK) != 0)
    throw runtime::Error(fmt::format("the library runtime is missing ('{}', '{}'); build nnc's nnc_aot_runtime target "
                                     "or set NNC_AOT_RUNTIME_DIR",
                                     archive, header));
  LibraryApi api = libraryApi(m, o.batch);
  Scratch scratch(o.outDir);
  const std::string &tmp = scratch.path;

  // The weights: every parameter and state tensor, the data statistics, and
  // the run's metadata, as nnc train --save writes them.
  std::string weightsPath = tmp + "/weights.safetensors";
  session.save(weightsPath, metadata, dataTensors);
  std::string weights = runtime::readFile(weightsPath);

  codegen::AotOptions ao;
  ao.cpu = o.cpu;
  ao.prefix = api.prefix;
  if (!o.weightsFile)
    ao.data = weights;
  codegen::AotObject obj = codegen::compileAhead(api.functions, ao);
  writeText(tmp + "/kernels.o", obj.object);

  writeText(tmp + "/" + api.prefix + ".h", libraryHeader(m, api, obj, o, source));
  writeText(tmp + "/glue.c",
            libraryGlue(m, api, obj, std::to_string(m.config.seed), scaleFactors(m.config), usesStatistics(m.config)));
  // The API stays global, and so do the DW.ref.* references of exception
  // handling (hidden weak symbols every C++ object shares; the static C++
  // runtime linked into the shared library needs them).
  std::string syms = "DW.ref.*\n";
  for (const std::string &s : exportedSymbols(m, api))
    syms += s + "\n";
  writeText(tmp + "/exports.txt", syms);

  std::string headerDir = fs::path(header).parent_path().string();
  run({"cc", "-O2", "-fPIC", "-fvisibility=hidden", "-Wall", "-Werror", "-I", headerDir, "-I", tmp, "-c",
       tmp + "/glue.c", "-o", tmp + "/glue.o"},
      tmp);
  run({"ld", "-r", "-o", tmp + "/all.o", tmp + "/kernels.o", tmp + "/glue.o", "--whole-archive", archive,
       "--no-whole-archive"},
      tmp);
  run({"objcopy", "--wildcard", "--keep-global-symbols=" + tmp + "/exports.txt", tmp + "/all.o"}, tmp);
  std::string lib = "lib" + api.prefix;
  run({"ar", "rcs", tmp + "/" + lib + ".a", tmp + "/all.o"}, tmp);
  // The C++ runtime goes inside the shared library (its symbols stay
  // local), so that it needs libc and libm alone.
  run({"c++", "-shared", "-o", tmp + "/" + lib + ".so", tmp + "/all.o", "-Wl,-soname," + lib + ".so",
       "-static-libstdc++", "-static-libgcc", "-Wl,--exclude-libs,ALL", "-lpthread"},
      tmp);

  // Into place.
  LibraryReport r;
  std::vector<std::pair<std::string, std::string>> moves = {
      {api.prefix + ".h", api.prefix + ".h"}, {lib + ".a", lib + ".a"}, {lib + ".so", lib + ".so"}};
  if (o.weightsFile)
    moves.push_back({"weights.safetensors", api.prefix + ".safetensors"});
  for (const auto &[from, to] : moves) {
    fs::path dest = fs::path(o.outDir) / to;
    std::error_code ec;
    fs::rename(fs::path(tmp) / from, dest, ec);
    if (ec)
      throw runtime::Error(fmt::format("cannot write '{}': {}", dest.string(), ec.message()));
    r.files.push_back(fs::absolute(dest).lexically_normal().string());
  }
  for (const codegen::AotVariant &v : obj.variants)
    r.variants += (r.variants.empty() ? "" : ", ") + (v.name == "native" ? "native (" + v.cpu + ")" : v.name);
  r.sharedBytes = int64_t(fs::file_size(fs::path(o.outDir) / (lib + ".so")));
  r.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  return r;
}

} // namespace nnc::driver
