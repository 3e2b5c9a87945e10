// local_db, the actor, on virtual time over a real SQLite file on the
// fault-injecting VFS: a prune that failed is done before the next answer
// is stored, so an answer from 0 (live entities, no deletions) never lands
// beside what the server deleted meanwhile.
#include "actors/client/local_db.hpp"

#include <algorithm>
#include <memory>
#include <string>
#include <vector>

#include "actors/client/local_database.hpp"
#include "tests/support/actor_fixture.hpp"
#include "tests/support/fault_vfs.hpp"
#include "tests/support/temp_dir.hpp"

using namespace memsync;
using memsync::testing::fault_vfs;
using memsync::testing::temp_dir;

namespace {

pull_reply answer_at(uint64_t version, std::vector<std::string> ids) {
  pull_reply r;
  r.next = cookie{"epoch-1", version, version};
  for (auto& id : ids)
    r.entities.push_back(entity{id, "note", "{}", version});
  return r;
}

struct local_db_test : memsync::testing::actor_test {
  temp_dir dir;
  fault_vfs vfs; // before the database: it opens its file through the VFS
  std::string path = dir.file("client.db");
  std::unique_ptr<local_database> owned = std::make_unique<local_database>(
    local_db_settings{path, "alice", "full"});
  /// The actor's database, read between steps: the test coordinator runs
  /// the actor on this thread only, and it holds the file's lock.
  local_database* file = owned.get();
  local_db_actor db = keep(spawn_local_db(sys, std::move(owned)));

  template <class... Ts>
  sync_error ask(Ts... xs) {
    sync_error out{sync_errc::timeout, "no answer"};
    auto rh = self->request(db, caf::infinite, xs...);
    sched.run();
    rh.receive([&](ok_atom) { out = {}; },
               [&](caf::error& err) { out = to_sync_error(err); });
    return out;
  }
  sync_error store(pull_reply r) {
    return ask(rebase_atom::value, std::move(r), std::vector<std::string>{});
  }
  sync_error prune_all() {
    return ask(prune_atom::value, scope_rules{}, std::vector<std::string>{});
  }

  /// The file's base ids, as the next start reads them.
  std::vector<std::string> base() {
    std::vector<std::string> out;
    for (auto& e : file->load().base)
      out.push_back(e.id);
    std::sort(out.begin(), out.end());
    return out;
  }
};

using ids = std::vector<std::string>;

} // namespace

TEST_F(local_db_test, a_failed_prune_is_done_before_the_next_answer_is_stored) {
  ASSERT_TRUE(store(answer_at(2, {"a", "b"})).ok());
  vfs.fail_writes(true);
  EXPECT_EQ(prune_all().code, sync_errc::db_error);
  vfs.fail_writes(false);
  // The answer of an entry from 0: what is live now. "a" was deleted on
  // the server meanwhile, and no answer will ever say so.
  ASSERT_TRUE(store(answer_at(5, {"b"})).ok());
  EXPECT_EQ(base(), (ids{"b"}));
}

TEST_F(local_db_test, while_an_owed_prune_fails_no_answer_is_stored) {
  ASSERT_TRUE(store(answer_at(2, {"a", "b"})).ok());
  vfs.fail_writes(true);
  EXPECT_EQ(prune_all().code, sync_errc::db_error);
  EXPECT_EQ(store(answer_at(5, {"b"})).code, sync_errc::db_error);
  vfs.fail_writes(false);
  EXPECT_EQ(base(), (ids{"a", "b"})) << "nothing of the answer without the prune";
  // The next prune does the owed one first, in order.
  ASSERT_TRUE(ask(prune_atom::value, scope_rules{}, std::vector<std::string>{"*"}).ok());
  EXPECT_EQ(base(), (ids{}));
}
