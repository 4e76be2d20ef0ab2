# Writes OUT (a C++ header) with the commit nnc is built from, rewriting it
# only when the commit changes, so that a build after a commit says so and
# one without a commit recompiles nothing. Run at every build by the
# nnc_git_version target: cmake -DSRC=<source dir> -DOUT=<file> -P GitVersion.cmake
execute_process(COMMAND git -C "${SRC}" describe --always --dirty --abbrev=12
                OUTPUT_VARIABLE commit OUTPUT_STRIP_TRAILING_WHITESPACE ERROR_QUIET RESULT_VARIABLE rc)
if(NOT rc EQUAL 0 OR commit STREQUAL "")
  set(commit "unknown (not built from a git checkout)")
endif()
set(text "#define NNC_GIT_COMMIT \"${commit}\"\n")
if(EXISTS "${OUT}")
  file(READ "${OUT}" old)
else()
  set(old "")
endif()
if(NOT old STREQUAL text)
  file(WRITE "${OUT}" "${text}")
endif()
