// The PostgreSQL entry of the backend conformance suite: every test dir maps
// to a fresh database (test_<n>) of the shared throwaway cluster, created on
// first open; copy() is CREATE DATABASE ... TEMPLATE. The databases of a test
// are dropped when it ends.
#pragma once

#include "tests/storage/backend_conformance.hpp"

namespace memsync::conformance {

backend_factory postgres_factory();

} // namespace memsync::conformance
