# A command-line test that counts the exit status AND the output, where ctest's PASS_REGULAR_EXPRESSION
# would ignore the exit status:
#   cmake -DEXIT=<status> [-DOUTPUT=<regex>] [-DNEEDS=<path>] -P expect_run.cmake -- <command> [args...]
# Passes when the command exits with EXIT and its stdout + stderr match OUTPUT (when given). NEEDS: a file or
# folder the command reads (pets-mini); when it is absent the test prints "THAW-SKIPPED: ..." (ctest's
# SKIP_REGULAR_EXPRESSION, set by thaw_add_cli_test, reports it as skipped) and runs nothing.
cmake_minimum_required(VERSION 3.25)

set(command "")
set(after_dashes FALSE)
math(EXPR last "${CMAKE_ARGC} - 1")
foreach(i RANGE ${last})
  if(after_dashes)
    list(APPEND command "${CMAKE_ARGV${i}}")
  elseif(CMAKE_ARGV${i} STREQUAL "--")
    set(after_dashes TRUE)
  endif()
endforeach()
if(NOT command OR NOT DEFINED EXIT)
  message(FATAL_ERROR "expect_run.cmake: usage: cmake -DEXIT=N [-DOUTPUT=regex] [-DNEEDS=path] -P expect_run.cmake -- command...")
endif()
if(DEFINED NEEDS AND NOT EXISTS "${NEEDS}")
  message("THAW-SKIPPED: ${NEEDS} not found: not run")
  return()
endif()

execute_process(COMMAND ${command} RESULT_VARIABLE status OUTPUT_VARIABLE out ERROR_VARIABLE out)
message("${out}")
set(problems "")
if(NOT status STREQUAL "${EXIT}")
  string(APPEND problems " exit status ${status}, expected ${EXIT}.")
endif()
if(DEFINED OUTPUT AND NOT out MATCHES "${OUTPUT}")
  string(APPEND problems " output does not match '${OUTPUT}'.")
endif()
if(problems)
  string(REPLACE ";" " " shown "${command}")
  message(FATAL_ERROR "expect_run: ${shown}:${problems}")
endif()
