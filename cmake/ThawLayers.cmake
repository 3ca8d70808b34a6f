# thaw's layers, each a static library that links only the layers below it:
#
#   core <- kernels <- nn <- {optim, models};  core <- data;  core <- report;
#   {models, optim, data, report} <- train <- bench <- cli (and the thaw executable)
#
# thaw_layer(NAME FOLDERS <folder>... [BELOW <layer>...]) creates the library thaw_<NAME> (sources are added by
# the folder's own CMakeLists.txt) and makes the direction a rule the compiler enforces: the library's include
# root is ${CMAKE_BINARY_DIR}/layers/<NAME>/, which holds a symbolic link to each of its own folders and to
# the folders of every layer below it, and nothing else. An #include of a higher layer's header ("train/..."
# from nn/) therefore fails to compile with "No such file or directory", where one library for everything
# would have accepted it. Targets that sit on top of everything (the tests) use the source root instead.
function(thaw_layer name)
  cmake_parse_arguments(PARSE_ARGV 1 layer "" "" "FOLDERS;BELOW")
  set(target thaw_${name})
  add_library(${target} STATIC)
  set(folders ${layer_FOLDERS})
  foreach(below IN LISTS layer_BELOW)
    get_target_property(below_folders thaw_${below} THAW_LAYER_FOLDERS)
    list(APPEND folders ${below_folders})
    target_link_libraries(${target} PUBLIC thaw_${below})
  endforeach()
  list(REMOVE_DUPLICATES folders)
  set_target_properties(${target} PROPERTIES THAW_LAYER_FOLDERS "${folders}")

  set(root ${CMAKE_BINARY_DIR}/layers/${name})
  file(REMOVE_RECURSE ${root})
  foreach(folder IN LISTS folders)
    get_filename_component(parent ${root}/${folder} DIRECTORY)
    file(MAKE_DIRECTORY ${parent})
    file(CREATE_LINK ${CMAKE_SOURCE_DIR}/${folder} ${root}/${folder} SYMBOLIC)
  endforeach()
  target_include_directories(${target} PUBLIC ${root})
endfunction()
