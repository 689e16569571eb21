# `cmake --install build --prefix P` gives a relocatable package:
#   P/lib/libcyclone.so, P/include/cyclone/..., P/lib/cmake/Cyclone/CycloneConfig.cmake
include(GNUInstallDirs)
include(CMakePackageConfigHelpers)

# $ORIGIN first (the package is relocatable); then where the CUDA libraries were found at build
# time, as a fallback for machines whose loader path does not list the toolkit.
set(cyclone_rpath "$ORIGIN")
if(CYCLONE_WITH_CUDA)
  get_filename_component(cyclone_cudnn_dir "${CYCLONE_CUDNN_LIB}" DIRECTORY)
  list(APPEND cyclone_rpath "${CUDAToolkit_LIBRARY_DIR}" "${cyclone_cudnn_dir}")
  list(REMOVE_DUPLICATES cyclone_rpath)
endif()
set_target_properties(cyclone PROPERTIES INSTALL_RPATH "${cyclone_rpath}")
# The include directory is the target's $<INSTALL_INTERFACE:...> (CMakeLists.txt); an INCLUDES
# DESTINATION here would list it a second time in the exported target.
install(TARGETS cyclone EXPORT CycloneTargets
  LIBRARY DESTINATION ${CMAKE_INSTALL_LIBDIR})
install(EXPORT CycloneTargets NAMESPACE cyclone:: DESTINATION ${CMAKE_INSTALL_LIBDIR}/cmake/Cyclone)

# Public headers: every .h/.cuh of the library folders, under include/cyclone/<folder>/, less the
# private ones: *_detail.h, config_section.h, backends.h, and the backends' cuda/ and cpu/ folders
# (some include the CUDA headers, some warn at -Wextra; no public header includes any of them).
foreach(folder core kernels layers models optim data schedulers dist train)
  install(DIRECTORY ${PROJECT_SOURCE_DIR}/${folder}/ DESTINATION ${CMAKE_INSTALL_INCLUDEDIR}/cyclone/${folder}
    FILES_MATCHING PATTERN "*.h" PATTERN "*.cuh" PATTERN "*_detail.h" EXCLUDE
    PATTERN "config_section.h" EXCLUDE PATTERN "backends.h" EXCLUDE
    PATTERN "cuda" EXCLUDE PATTERN "cpu" EXCLUDE)
endforeach()
install(FILES ${PROJECT_SOURCE_DIR}/cyclone.h DESTINATION ${CMAKE_INSTALL_INCLUDEDIR}/cyclone)

configure_package_config_file(${PROJECT_SOURCE_DIR}/cmake/CycloneConfig.cmake.in
  ${PROJECT_BINARY_DIR}/CycloneConfig.cmake INSTALL_DESTINATION ${CMAKE_INSTALL_LIBDIR}/cmake/Cyclone)
write_basic_package_version_file(${PROJECT_BINARY_DIR}/CycloneConfigVersion.cmake
  COMPATIBILITY SameMinorVersion)  # below 1.0 a minor version may change the API
install(FILES ${PROJECT_BINARY_DIR}/CycloneConfig.cmake ${PROJECT_BINARY_DIR}/CycloneConfigVersion.cmake
  DESTINATION ${CMAKE_INSTALL_LIBDIR}/cmake/Cyclone)
