# cyclone_add_folder(<folder> DEPS <targets...>)
# One OBJECT library per folder of DESIGN.md: <folder>/*.cpp and <folder>/cpu/*.cpp always,
# <folder>/cuda/*.cu (and *.cpp) only when the CUDA backend is built. Sources are globbed so that
# adding a file to a folder needs no CMake edit.
function(cyclone_add_folder folder)
  cmake_parse_arguments(ARG "" "" "DEPS" ${ARGN})
  set(dir ${PROJECT_SOURCE_DIR}/${folder})
  file(GLOB srcs CONFIGURE_DEPENDS ${dir}/*.cpp ${dir}/cpu/*.cpp)
  if(CYCLONE_WITH_CUDA)
    file(GLOB cuda_srcs CONFIGURE_DEPENDS ${dir}/cuda/*.cu ${dir}/cuda/*.cpp)
    list(APPEND srcs ${cuda_srcs})
  endif()
  set(target cyclone_${folder})
  add_library(${target} OBJECT ${srcs})
  target_include_directories(${target} PUBLIC $<BUILD_INTERFACE:${CYCLONE_BUILD_INCLUDE}>)
  target_compile_definitions(${target} PUBLIC CYCLONE_CUDA=$<BOOL:${CYCLONE_WITH_CUDA}>)
  target_compile_options(${target} PRIVATE
    $<$<COMPILE_LANGUAGE:CXX>:-Wall -Wextra -Wno-unused-parameter>
    $<$<COMPILE_LANGUAGE:CUDA>:--expt-relaxed-constexpr -Xcompiler=-Wall>)
  if(ARG_DEPS)
    target_link_libraries(${target} PUBLIC ${ARG_DEPS})
  endif()
  if(CYCLONE_WITH_CUDA)
    set_target_properties(${target} PROPERTIES CUDA_SEPARABLE_COMPILATION OFF)
    target_link_libraries(${target} PUBLIC CUDA::cudart)
  endif()
endfunction()
