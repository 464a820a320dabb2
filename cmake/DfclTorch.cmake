# \brief One precompiled <torch/torch.h> shared by every target that uses torch.
#
# The PCH costs ~30 s and ~600 MB once; each further target reuses it (REUSE_FROM) instead of
# building its own. Headers in src/ never include <torch/torch.h>; .cpp files that need nn/optim do,
# and they get it from the PCH for ~4 s instead of ~10 s.
add_library(dfcl_torch_pch OBJECT EXCLUDE_FROM_ALL ${CMAKE_CURRENT_LIST_DIR}/torch_pch.cpp)
target_link_libraries(dfcl_torch_pch PUBLIC ${TORCH_LIBRARIES})
target_precompile_headers(dfcl_torch_pch PRIVATE <torch/torch.h>)

# dfcl_use_torch(target): link LibTorch and reuse the shared PCH.
# The PCH is compiled -fPIC (an object library); executables default to -fPIE, and gcc rejects a PCH built with
# other code-model flags (-Winvalid-pch) and silently parses <torch/torch.h> again. So executables compile -fPIC too.
function(dfcl_use_torch target)
  target_link_libraries(${target} PUBLIC ${TORCH_LIBRARIES})
  target_precompile_headers(${target} REUSE_FROM dfcl_torch_pch)
  get_target_property(type ${target} TYPE)
  if(type STREQUAL "EXECUTABLE")
    set_target_properties(${target} PROPERTIES POSITION_INDEPENDENT_CODE OFF)
    target_compile_options(${target} PRIVATE -fPIC)
  endif()
endfunction()
