# Third-party dependencies, all from Debian packages (see README) or the CUDA toolkit.
find_package(Threads REQUIRED)
find_package(nlohmann_json 3.10 REQUIRED)
# zlib reads the gzipped IDX files of MNIST / Fashion-MNIST (data/gzip.cpp).
find_package(ZLIB REQUIRED)
# Fetching datasets (data/download.cpp, data/archive.cpp): libcurl for the transfers, libarchive
# for the tar.gz archives, OpenSSL's libcrypto for MD5 — Debian's packages, not hand-written.
find_package(CURL REQUIRED)
find_package(LibArchive REQUIRED)
find_package(OpenSSL REQUIRED COMPONENTS Crypto)
# YAML configs (train/config_tree.cpp): yaml-cpp from Debian; the parsed tree becomes the same
# nlohmann::json tree a JSON config gives, so one validator reads both.
find_package(yaml-cpp REQUIRED)
find_package(OpenBLAS CONFIG QUIET)
if(OpenBLAS_FOUND AND NOT TARGET cyclone_openblas)
  add_library(cyclone_openblas INTERFACE)
  target_include_directories(cyclone_openblas INTERFACE ${OpenBLAS_INCLUDE_DIRS})
  target_link_libraries(cyclone_openblas INTERFACE ${OpenBLAS_LIBRARIES})
else()
  set(BLA_VENDOR OpenBLAS)
  find_package(BLAS REQUIRED)
  find_path(CYCLONE_CBLAS_INCLUDE cblas.h PATH_SUFFIXES openblas)
  add_library(cyclone_openblas INTERFACE)
  target_include_directories(cyclone_openblas INTERFACE ${CYCLONE_CBLAS_INCLUDE})
  target_link_libraries(cyclone_openblas INTERFACE BLAS::BLAS)
endif()

if(CYCLONE_WITH_CUDA)
  # cuDNN and NCCL ship beside the toolkit here; on GPU hosts they come from PyTorch's wheels
  # (scripts/gpu_run.sh points LD_LIBRARY_PATH at them).
  find_library(CYCLONE_CUDNN_LIB cudnn HINTS ${CUDAToolkit_LIBRARY_DIR} /usr/local/lib REQUIRED)
  find_path(CYCLONE_CUDNN_INCLUDE cudnn.h HINTS ${CUDAToolkit_INCLUDE_DIRS} /usr/local/include REQUIRED)
  add_library(cyclone_cudnn INTERFACE)
  target_include_directories(cyclone_cudnn INTERFACE ${CYCLONE_CUDNN_INCLUDE})
  target_link_libraries(cyclone_cudnn INTERFACE ${CYCLONE_CUDNN_LIB})
endif()
