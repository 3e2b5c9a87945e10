// A fault-injecting SQLite VFS for durability tests. It wraps the default
// VFS and records, per file, what every write since that file's last sync
// overwrote, so it can "lose power": every file goes back to what it held
// at its last sync, as a disk with a volatile cache would leave it, and
// until revive() nothing more reaches the disk (the machine is off). It
// also injects I/O errors and a full disk.
//
// While a fault_vfs exists it is SQLite's default VFS, so code under test
// opens its files through it unchanged. One at a time; not for use from
// several threads at once beyond what SQLite's own locking serializes.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>

namespace memsync::testing {

class fault_vfs {
public:
  fault_vfs();
  ~fault_vfs();
  fault_vfs(const fault_vfs&) = delete;
  fault_vfs& operator=(const fault_vfs&) = delete;

  /// Restores every file written through this VFS to its content at its
  /// last sync (unsynced growth is cut off), and drops every write, sync,
  /// truncate and delete from now on until revive(). Returns how many bytes
  /// of unsynced writes were lost.
  std::size_t power_loss();
  /// Loses power (as power_loss()) at the `writes`-th write from now, in
  /// the middle of whatever is being written then.
  void power_loss_after(std::size_t writes);
  /// True while the power is off. Whatever the code under test reports
  /// after this turned true never happened: the process died with the power.
  bool off() const;
  /// Power is back: writes reach the disk again.
  void revive();

  /// Every write and truncate fails with SQLITE_IOERR_WRITE (true) or works (false).
  void fail_writes(bool on);
  /// Files may hold at most `bytes` in all (new writes beyond fail with
  /// SQLITE_FULL); SIZE_MAX: no limit.
  void set_quota(std::size_t bytes);

  /// Counters, for asserting that a test exercised what it meant to.
  std::size_t syncs() const;
  std::size_t failed_writes() const;
};

} // namespace memsync::testing
