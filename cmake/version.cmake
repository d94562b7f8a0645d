# Writes OUT (genq_version.h): GENQ_VERSION, `git describe` of SOURCE_DIR
# (tags, else the commit; "-dirty" with uncommitted changes), or "unknown"
# outside a git checkout. Run at every build; the file is rewritten only when
# the version changed, so nothing recompiles otherwise.
execute_process(COMMAND git describe --tags --always --dirty
                WORKING_DIRECTORY ${SOURCE_DIR} OUTPUT_VARIABLE v
                OUTPUT_STRIP_TRAILING_WHITESPACE ERROR_QUIET RESULT_VARIABLE rc)
if(NOT rc EQUAL 0 OR v STREQUAL "")
  set(v "unknown")
endif()
set(text "#define GENQ_VERSION \"${v}\"\n")
if(EXISTS ${OUT})
  file(READ ${OUT} old)
endif()
if(NOT "${old}" STREQUAL "${text}")
  file(WRITE ${OUT} "${text}")
endif()
