# check_layout.cmake -DSRC=<source dir> — fails when a file under src/ includes a folder on its own floor or
# a higher one (run by CTest as test_layout). The floors, lowest first; a folder may include only folders
# on lower floors. Inside src/model/ the same rule holds for its parts: config < blocks < the model
# interface < the architectures (which may include each other's parts) < the factory < checkpoints.
cmake_minimum_required(VERSION 3.18)
set(floors
  "util"
  "io"
  "tokenizer blt"
  "data"
  "model"
  "optim"
  "eval generate"
  "distributed"
  "train"
  "bench experiment serve"
  "cli")
set(model_floors
  "config config_json config_blt config_hnet presets module_util decode_weights"
  "blocks attention blocks_rows"
  "model"
  "transformer megabyte megabyte_conv megabyte_levels megabyte_xpatch megabyte_decode megabyte_rows entropy_model blt blt_patching blt_decode blt_rows bpe hnet hnet_decode"
  "factory"
  "checkpoint")

# floor_of(<list of floors> NAME OUT): the index of the floor naming NAME, or -1.
function(floor_of floors name out)
  set(i 0)
  foreach(floor IN LISTS floors)
    string(REPLACE " " ";" members "${floor}")
    if(name IN_LIST members)
      set(${out} ${i} PARENT_SCOPE)
      return()
    endif()
    math(EXPR i "${i} + 1")
  endforeach()
  set(${out} -1 PARENT_SCOPE)
endfunction()

set(bad "")
file(GLOB_RECURSE sources RELATIVE "${SRC}/src" "${SRC}/src/*.h" "${SRC}/src/*.cpp")
foreach(rel IN LISTS sources)
  string(REGEX MATCH "^[a-z_]+" folder "${rel}")
  get_filename_component(stem "${rel}" NAME_WE)
  floor_of("${floors}" "${folder}" mine)
  if(mine EQUAL -1)
    list(APPEND bad "src/${rel}: folder '${folder}' has no floor in cmake/check_layout.cmake")
    continue()
  endif()
  file(STRINGS "${SRC}/src/${rel}" includes REGEX "^#include \"[a-z_]+/[a-z_0-9]+\\.h\"")
  foreach(line IN LISTS includes)
    string(REGEX REPLACE "^#include \"([a-z_]+)/([a-z_0-9]+)\\.h\".*" "\\1;\\2" target "${line}")
    list(GET target 0 to_folder)
    list(GET target 1 to_stem)
    if(to_folder STREQUAL folder)
      if(folder STREQUAL "model" AND NOT to_stem STREQUAL stem)
        floor_of("${model_floors}" "${stem}" a)
        floor_of("${model_floors}" "${to_stem}" b)
        if(a EQUAL -1 OR b EQUAL -1)
          list(APPEND bad "src/${rel}: model part '${stem}' or '${to_stem}' has no floor in cmake/check_layout.cmake")
        elseif(NOT b LESS a AND NOT a EQUAL b)
          list(APPEND bad "src/${rel} includes model/${to_stem}.h, a higher part of src/model")
        endif()
      endif()
      continue()
    endif()
    floor_of("${floors}" "${to_folder}" theirs)
    if(theirs EQUAL -1 OR NOT theirs LESS mine)
      list(APPEND bad "src/${rel} includes ${to_folder}/${to_stem}.h: ${to_folder}/ is not on a lower floor than ${folder}/")
    endif()
  endforeach()
endforeach()
if(bad)
  list(JOIN bad "\n" text)
  message(FATAL_ERROR "include layering:\n${text}")
endif()
message(STATUS "include layering: ok")
