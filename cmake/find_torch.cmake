# find_torch.cmake — finds LibTorch inside a Python's torch package (PyPI's wheel carries LibTorch with CUDA).
# The Python is BYTELM_PYTHON: by default the checkout's .venv (scripts/setup/python-env.sh), else `python3`
# on PATH (the GPU machine's own torch). Its torch directory goes first on CMAKE_PREFIX_PATH so its libraries
# win over any LibTorch installed system-wide (Debian's 1.13). bytelm needs LibTorch 2.11 or newer.
if(NOT BYTELM_PYTHON)
  if(EXISTS "${CMAKE_SOURCE_DIR}/.venv/bin/python")
    set(BYTELM_PYTHON "${CMAKE_SOURCE_DIR}/.venv/bin/python")
  else()
    find_program(BYTELM_PYTHON NAMES python3 REQUIRED)
  endif()
endif()
execute_process(
  COMMAND "${BYTELM_PYTHON}" -c "import os, torch; print(os.path.dirname(torch.__file__)); print(torch.utils.cmake_prefix_path)"
  OUTPUT_VARIABLE torch_paths RESULT_VARIABLE torch_rc ERROR_VARIABLE torch_err OUTPUT_STRIP_TRAILING_WHITESPACE)
if(NOT torch_rc EQUAL 0)
  message(FATAL_ERROR "bytelm: ${BYTELM_PYTHON} cannot import torch (run scripts/setup/python-env.sh): ${torch_err}")
endif()
string(REPLACE "\n" ";" torch_paths "${torch_paths}")
list(GET torch_paths 0 BYTELM_TORCH_DIR)
list(PREPEND CMAKE_PREFIX_PATH ${torch_paths})
# CUDA code is built for the H200 (sm_90) unless told otherwise; any CUDA-enabled LibTorch still runs on CPUs.
if(NOT DEFINED ENV{TORCH_CUDA_ARCH_LIST})
  set(ENV{TORCH_CUDA_ARCH_LIST} "9.0")
endif()
find_package(Torch 2.11 REQUIRED)
if(NOT TORCH_LIBRARY MATCHES "^${BYTELM_TORCH_DIR}/")
  message(FATAL_ERROR "bytelm: LibTorch library ${TORCH_LIBRARY} is not from ${BYTELM_TORCH_DIR}")
endif()
message(STATUS "bytelm: LibTorch ${Torch_VERSION} from ${BYTELM_TORCH_DIR}")
