#include "tests/support/fault_vfs.hpp"

#include <cstring>
#include <map>
#include <mutex>
#include <stdexcept>
#include <string>
#include <vector>

#include <sqlite3.h>
#include <unistd.h>

namespace memsync::testing {

namespace {

// What a write since the last sync overwrote, to put back on power loss.
struct undo_entry {
  sqlite3_int64 offset;
  std::string old_bytes;
};

struct file_record {
  sqlite3_int64 synced_size = -1; // -1: no unsynced change
  std::vector<undo_entry> undo;   // in write order
};

struct vfs_state {
  std::mutex mtx;
  sqlite3_vfs* base = nullptr;
  sqlite3_vfs vfs{};
  std::map<std::string, file_record> files; // by path
  bool off = false;
  std::size_t writes_until_loss = 0; // 0: none scheduled
  bool fail_writes = false;
  std::size_t quota = SIZE_MAX;
  std::size_t syncs = 0;
  std::size_t failed_writes = 0;
};

vfs_state* state = nullptr;

std::size_t lose_power_locked();

struct shim_file {
  sqlite3_file base_methods; // our io methods
  std::string* path;         // owned
  sqlite3_file* real;        // follows this struct in the same allocation
};

sqlite3_file* real_of(sqlite3_file* f) {
  return reinterpret_cast<shim_file*>(f)->real;
}
const std::string& path_of(sqlite3_file* f) {
  return *reinterpret_cast<shim_file*>(f)->path;
}

sqlite3_int64 size_of(sqlite3_file* real) {
  sqlite3_int64 size = 0;
  real->pMethods->xFileSize(real, &size);
  return size;
}

std::size_t total_size() {
  // Sizes on disk of every tracked file (the quota covers what we wrote).
  std::size_t total = 0;
  for (auto& [path, rec] : state->files) {
    if (auto* f = std::fopen(path.c_str(), "rb")) {
      std::fseek(f, 0, SEEK_END);
      total += static_cast<std::size_t>(std::ftell(f));
      std::fclose(f);
    }
  }
  return total;
}

/// Remembers what [offset, offset+n) holds now, before it changes.
void record_undo(sqlite3_file* f, sqlite3_int64 offset, int n) {
  auto& rec = state->files[path_of(f)];
  auto* real = real_of(f);
  auto size = size_of(real);
  if (rec.synced_size < 0)
    rec.synced_size = size;
  if (offset >= size)
    return; // pure growth: cutting back to synced_size undoes it
  auto len = std::min<sqlite3_int64>(n, size - offset);
  std::string old(static_cast<size_t>(len), '\0');
  real->pMethods->xRead(real, old.data(), static_cast<int>(len), offset);
  rec.undo.push_back({offset, std::move(old)});
}

int x_close(sqlite3_file* f) {
  auto* shim = reinterpret_cast<shim_file*>(f);
  auto rc = shim->real->pMethods ? shim->real->pMethods->xClose(shim->real) : SQLITE_OK;
  delete shim->path;
  return rc;
}
int x_read(sqlite3_file* f, void* buf, int n, sqlite3_int64 off) {
  return real_of(f)->pMethods->xRead(real_of(f), buf, n, off);
}
int x_write(sqlite3_file* f, const void* buf, int n, sqlite3_int64 off) {
  std::lock_guard<std::mutex> guard{state->mtx};
  if (state->off)
    return SQLITE_OK; // the machine is off: nothing reaches the disk
  if (state->fail_writes) {
    ++state->failed_writes;
    return SQLITE_IOERR_WRITE;
  }
  if (state->writes_until_loss > 0 && --state->writes_until_loss == 0) {
    lose_power_locked();
    return SQLITE_OK; // this write never reached the disk
  }
  auto* real = real_of(f);
  if (state->quota != SIZE_MAX) {
    auto growth = std::max<sqlite3_int64>(0, off + n - size_of(real));
    if (total_size() + static_cast<std::size_t>(growth) > state->quota) {
      ++state->failed_writes;
      return SQLITE_FULL;
    }
  }
  record_undo(f, off, n);
  return real->pMethods->xWrite(real, buf, n, off);
}
int x_truncate(sqlite3_file* f, sqlite3_int64 size) {
  std::lock_guard<std::mutex> guard{state->mtx};
  if (state->off)
    return SQLITE_OK;
  if (state->fail_writes) {
    ++state->failed_writes;
    return SQLITE_IOERR_TRUNCATE;
  }
  auto* real = real_of(f);
  auto old = size_of(real);
  if (size < old)
    record_undo(f, size, static_cast<int>(old - size));
  return real->pMethods->xTruncate(real, size);
}
int x_sync(sqlite3_file* f, int flags) {
  std::lock_guard<std::mutex> guard{state->mtx};
  if (state->off)
    return SQLITE_OK;
  auto rc = real_of(f)->pMethods->xSync(real_of(f), flags);
  if (rc == SQLITE_OK) {
    ++state->syncs;
    state->files[path_of(f)] = file_record{};
  }
  return rc;
}
int x_file_size(sqlite3_file* f, sqlite3_int64* size) {
  return real_of(f)->pMethods->xFileSize(real_of(f), size);
}
int x_lock(sqlite3_file* f, int level) {
  return real_of(f)->pMethods->xLock(real_of(f), level);
}
int x_unlock(sqlite3_file* f, int level) {
  return real_of(f)->pMethods->xUnlock(real_of(f), level);
}
int x_check_reserved(sqlite3_file* f, int* out) {
  return real_of(f)->pMethods->xCheckReservedLock(real_of(f), out);
}
int x_file_control(sqlite3_file* f, int op, void* arg) {
  return real_of(f)->pMethods->xFileControl(real_of(f), op, arg);
}
int x_sector_size(sqlite3_file* f) {
  return real_of(f)->pMethods->xSectorSize(real_of(f));
}
int x_device_characteristics(sqlite3_file* f) {
  return real_of(f)->pMethods->xDeviceCharacteristics(real_of(f));
}
int x_shm_map(sqlite3_file* f, int region, int size, int extend, void volatile** out) {
  return real_of(f)->pMethods->xShmMap(real_of(f), region, size, extend, out);
}
int x_shm_lock(sqlite3_file* f, int offset, int n, int flags) {
  return real_of(f)->pMethods->xShmLock(real_of(f), offset, n, flags);
}
void x_shm_barrier(sqlite3_file* f) {
  real_of(f)->pMethods->xShmBarrier(real_of(f));
}
int x_shm_unmap(sqlite3_file* f, int del) {
  return real_of(f)->pMethods->xShmUnmap(real_of(f), del);
}

// Version 2: shared memory for WAL, but no memory-mapped reads, so every
// read of the database goes through xRead.
const sqlite3_io_methods shim_methods = {
  2,
  x_close,
  x_read,
  x_write,
  x_truncate,
  x_sync,
  x_file_size,
  x_lock,
  x_unlock,
  x_check_reserved,
  x_file_control,
  x_sector_size,
  x_device_characteristics,
  x_shm_map,
  x_shm_lock,
  x_shm_barrier,
  x_shm_unmap,
  nullptr,
  nullptr,
};

int x_open(sqlite3_vfs*, sqlite3_filename name, sqlite3_file* f, int flags,
           int* out_flags) {
  auto* shim = reinterpret_cast<shim_file*>(f);
  shim->real = reinterpret_cast<sqlite3_file*>(shim + 1);
  shim->path = new std::string(name ? name : "");
  shim->base_methods.pMethods = nullptr;
  auto rc = state->base->xOpen(state->base, name, shim->real, flags, out_flags);
  if (rc != SQLITE_OK) {
    delete shim->path;
    return rc;
  }
  shim->base_methods.pMethods = &shim_methods;
  return SQLITE_OK;
}
int x_delete(sqlite3_vfs*, const char* name, int sync_dir) {
  std::lock_guard<std::mutex> guard{state->mtx};
  if (state->off)
    return SQLITE_OK;
  state->files.erase(name);
  return state->base->xDelete(state->base, name, sync_dir);
}
int x_access(sqlite3_vfs*, const char* name, int flags, int* out) {
  return state->base->xAccess(state->base, name, flags, out);
}
int x_full_pathname(sqlite3_vfs*, const char* name, int n, char* out) {
  return state->base->xFullPathname(state->base, name, n, out);
}
void* x_dl_open(sqlite3_vfs*, const char* name) {
  return state->base->xDlOpen(state->base, name);
}
void x_dl_error(sqlite3_vfs*, int n, char* msg) {
  state->base->xDlError(state->base, n, msg);
}
void (*x_dl_sym(sqlite3_vfs*, void* h, const char* sym))(void) {
  return state->base->xDlSym(state->base, h, sym);
}
void x_dl_close(sqlite3_vfs*, void* h) {
  state->base->xDlClose(state->base, h);
}
int x_randomness(sqlite3_vfs*, int n, char* out) {
  return state->base->xRandomness(state->base, n, out);
}
int x_sleep(sqlite3_vfs*, int us) {
  return state->base->xSleep(state->base, us);
}
int x_current_time(sqlite3_vfs*, double* out) {
  return state->base->xCurrentTime(state->base, out);
}
int x_last_error(sqlite3_vfs*, int n, char* out) {
  return state->base->xGetLastError ? state->base->xGetLastError(state->base, n, out) : 0;
}
int x_current_time_int64(sqlite3_vfs*, sqlite3_int64* out) {
  return state->base->xCurrentTimeInt64(state->base, out);
}

std::size_t lose_power_locked() {
  std::size_t lost = 0;
  for (auto& [path, rec] : state->files) {
    if (rec.synced_size < 0)
      continue;
    // Put back what unsynced writes overwrote, newest first, then cut off
    // unsynced growth: the file is as its last sync left it.
    if (auto* f = std::fopen(path.c_str(), "r+b")) {
      for (auto it = rec.undo.rbegin(); it != rec.undo.rend(); ++it) {
        std::fseek(f, static_cast<long>(it->offset), SEEK_SET);
        std::fwrite(it->old_bytes.data(), 1, it->old_bytes.size(), f);
        lost += it->old_bytes.size();
      }
      std::fseek(f, 0, SEEK_END);
      auto size = std::ftell(f);
      if (size > rec.synced_size)
        lost += static_cast<std::size_t>(size - rec.synced_size);
      std::fclose(f);
      if (truncate(path.c_str(), rec.synced_size) != 0)
        throw std::runtime_error("fault_vfs: cannot truncate " + path);
    }
  }
  state->files.clear();
  state->off = true;
  state->writes_until_loss = 0;
  return lost;
}

} // namespace

fault_vfs::fault_vfs() {
  if (state)
    throw std::logic_error("one fault_vfs at a time");
  sqlite3_initialize();
  state = new vfs_state;
  state->base = sqlite3_vfs_find(nullptr);
  auto& v = state->vfs;
  v.iVersion = 2;
  v.szOsFile = static_cast<int>(sizeof(shim_file)) + state->base->szOsFile;
  v.mxPathname = state->base->mxPathname;
  v.zName = "memsync-fault";
  v.xOpen = x_open;
  v.xDelete = x_delete;
  v.xAccess = x_access;
  v.xFullPathname = x_full_pathname;
  v.xDlOpen = x_dl_open;
  v.xDlError = x_dl_error;
  v.xDlSym = x_dl_sym;
  v.xDlClose = x_dl_close;
  v.xRandomness = x_randomness;
  v.xSleep = x_sleep;
  v.xCurrentTime = x_current_time;
  v.xGetLastError = x_last_error;
  v.xCurrentTimeInt64 = x_current_time_int64;
  sqlite3_vfs_register(&v, /*makeDflt*/ 1);
}

fault_vfs::~fault_vfs() {
  sqlite3_vfs_unregister(&state->vfs);
  sqlite3_vfs_register(state->base, 1);
  delete state;
  state = nullptr;
}

std::size_t fault_vfs::power_loss() {
  std::lock_guard<std::mutex> guard{state->mtx};
  return lose_power_locked();
}

void fault_vfs::power_loss_after(std::size_t writes) {
  std::lock_guard<std::mutex> guard{state->mtx};
  state->writes_until_loss = writes;
}

bool fault_vfs::off() const {
  std::lock_guard<std::mutex> guard{state->mtx};
  return state->off;
}

void fault_vfs::revive() {
  std::lock_guard<std::mutex> guard{state->mtx};
  state->off = false;
}

void fault_vfs::fail_writes(bool on) {
  std::lock_guard<std::mutex> guard{state->mtx};
  state->fail_writes = on;
}

void fault_vfs::set_quota(std::size_t bytes) {
  std::lock_guard<std::mutex> guard{state->mtx};
  state->quota = bytes;
}

std::size_t fault_vfs::syncs() const {
  std::lock_guard<std::mutex> guard{state->mtx};
  return state->syncs;
}

std::size_t fault_vfs::failed_writes() const {
  std::lock_guard<std::mutex> guard{state->mtx};
  return state->failed_writes;
}

} // namespace memsync::testing
