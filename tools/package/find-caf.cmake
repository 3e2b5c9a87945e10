# CAF 0.17 as Debian ships it has no CMake config and no pkg-config file:
# find its headers and libraries by hand and name them as imported targets,
# caf::core and caf::io. Used by the build (CMakeLists.txt) and installed
# with the package, whose exported targets link these names. Sets
# memsync_CAF_FOUND; the caller decides how to fail.
find_path(CAF_INCLUDE_DIR caf/all.hpp)
find_library(CAF_CORE_LIBRARY caf_core)
find_library(CAF_IO_LIBRARY caf_io)
if(CAF_INCLUDE_DIR AND CAF_CORE_LIBRARY AND CAF_IO_LIBRARY)
  set(memsync_CAF_FOUND TRUE)
  if(NOT TARGET caf::core)
    add_library(caf::core UNKNOWN IMPORTED)
    set_target_properties(caf::core PROPERTIES IMPORTED_LOCATION "${CAF_CORE_LIBRARY}"
      INTERFACE_INCLUDE_DIRECTORIES "${CAF_INCLUDE_DIR}")
  endif()
  if(NOT TARGET caf::io)
    add_library(caf::io UNKNOWN IMPORTED)
    set_target_properties(caf::io PROPERTIES IMPORTED_LOCATION "${CAF_IO_LIBRARY}"
      INTERFACE_LINK_LIBRARIES caf::core)
  endif()
else()
  set(memsync_CAF_FOUND FALSE)
endif()
