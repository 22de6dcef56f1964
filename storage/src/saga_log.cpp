// SqliteSagaLog: table `events` (append-only) and table `sagas` (one row
// per saga: state, idempotency key and its snapshot at the latest change of
// state, for queries).
#include "sagalab/saga_log.hpp"

#include "sagalab/group_commit.hpp"

namespace sagalab {

struct SqliteSagaLog::Impl {
  Db db;
  Stmt ins_event, upsert, unfinished, events, snapshot, by_idem, list_all, list_state, forget_events, forget_saga;
  GroupCommit group{db};  // every statement runs inside one of its batches
  bool write(const std::string& saga_id, int seq, const std::vector<std::string>& bodies,
             const std::optional<Row>& row, std::int64_t now_ms);
  explicit Impl(const std::string& path, SyncMode sync)
      : db(path, sync),
        ins_event((db.exec("CREATE TABLE IF NOT EXISTS events (saga_id TEXT NOT NULL, seq INTEGER NOT NULL, "
                           "body TEXT NOT NULL, PRIMARY KEY (saga_id, seq)) WITHOUT ROWID;"
                           "CREATE TABLE IF NOT EXISTS sagas (saga_id TEXT PRIMARY KEY, estado TEXT NOT NULL, "
                           "idem_key TEXT NOT NULL, created_ms INTEGER NOT NULL, updated_ms INTEGER NOT NULL, "
                           "snapshot TEXT NOT NULL);"
                           "CREATE UNIQUE INDEX IF NOT EXISTS sagas_idem ON sagas(idem_key) WHERE idem_key <> '';"
                           "CREATE INDEX IF NOT EXISTS sagas_estado ON sagas(estado, created_ms);"),
                   db.handle()),
                  "INSERT INTO events (saga_id, seq, body) VALUES (?1, ?2, ?3)"),
        upsert(db.handle(),
               "INSERT INTO sagas (saga_id, estado, idem_key, created_ms, updated_ms, snapshot) "
               "VALUES (?1, ?2, ?3, ?4, ?4, ?5) ON CONFLICT(saga_id) DO UPDATE SET estado = excluded.estado, "
               "updated_ms = excluded.updated_ms, snapshot = excluded.snapshot"),
        unfinished(db.handle(),
                   "SELECT saga_id FROM sagas WHERE estado NOT IN ('completada', 'compensada') ORDER BY created_ms"),
        events(db.handle(), "SELECT body FROM events WHERE saga_id = ?1 ORDER BY seq"),
        snapshot(db.handle(), "SELECT snapshot FROM sagas WHERE saga_id = ?1"),
        by_idem(db.handle(), "SELECT saga_id FROM sagas WHERE idem_key = ?1 AND idem_key <> ''"),
        list_all(db.handle(), "SELECT snapshot FROM sagas ORDER BY created_ms, saga_id LIMIT ?1"),
        list_state(db.handle(),
                   "SELECT snapshot FROM sagas WHERE estado = ?1 ORDER BY created_ms, saga_id LIMIT ?2"),
        forget_events(db.handle(), "DELETE FROM events WHERE saga_id = ?1"),
        forget_saga(db.handle(), "DELETE FROM sagas WHERE saga_id = ?1") {}
};

SqliteSagaLog::SqliteSagaLog(const std::string& path, SyncMode sync) : impl_(std::make_unique<Impl>(path, sync)) {}
SqliteSagaLog::~SqliteSagaLog() = default;

std::vector<std::string> SagaLog::encode(const std::vector<Event>& events) {
  std::vector<std::string> bodies;
  bodies.reserve(events.size());
  for (const auto& e : events) bodies.push_back(event_text(e));
  return bodies;
}

std::optional<SagaLog::Row> SagaLog::row_of(const SagaDefinition& def, const Event& e, Estado before,
                                            const SagaState& next, const std::string& idem_key) const {
  if (e.type != Event::Type::Start && next.estado == before) return std::nullopt;
  return Row{to_string(next.estado), idem_key, stores_snapshots() ? snapshot_text(next, def) : std::string(), &next};
}

// The one writer of a saga's events and row, inside a batch of the group commit.
bool SqliteSagaLog::Impl::write(const std::string& saga_id, int seq, const std::vector<std::string>& bodies,
                          const std::optional<Row>& row, std::int64_t now_ms) {
  int n = seq;
  for (const auto& body : bodies) {
    ins_event.reset();
    ins_event.bind(1, saga_id).bind(2, static_cast<std::int64_t>(n++)).bind(3, body);
    ins_event.step();
    ins_event.reset();
  }
  if (row) {
    upsert.reset();
    upsert.bind(1, saga_id).bind(2, row->estado).bind(3, row->idem_key).bind(4, now_ms).bind(5, row->snapshot);
    upsert.step();
    upsert.reset();
  }
  return true;
}

void SqliteSagaLog::append(const std::string& saga_id, int seq, std::vector<Event> events, std::optional<Row> row,
                     std::int64_t now_ms, Done done) {
  // Group commit: concurrent sagas' events share one COMMIT (one fsync), and
  // each saga hears back only once its own are durable. Encoded here, on the
  // caller's thread, so that the committer thread only writes.
  auto& i = *impl_;
  i.group.post([&i, saga_id, seq, bodies = encode(events), row = std::move(row),
                now_ms] { return i.write(saga_id, seq, bodies, row, now_ms); },
               std::move(done));
}

void SqliteSagaLog::append_now(const std::string& saga_id, int seq, const std::vector<Event>& events,
                         const std::optional<Row>& row, std::int64_t now_ms) {
  auto bodies = encode(events);
  impl_->group.run([&] { return impl_->write(saga_id, seq, bodies, row, now_ms); });
}

namespace {
// One text column of at most one row, read on the log's committer thread.
void read_one(GroupCommit& group, Stmt& s, const std::string& key,
              std::function<void(std::optional<std::string>, std::exception_ptr)> done) {
  auto out = std::make_shared<std::optional<std::string>>();
  group.post(
      [&s, key, out] {
        s.reset();
        s.bind(1, key);
        if (s.step()) *out = s.text(0);
        s.reset();
        return false;
      },
      [out, done = std::move(done)](std::exception_ptr e) { done(std::move(*out), e); });
}
}  // namespace

void SqliteSagaLog::snapshot(const std::string& saga_id, std::function<void(std::optional<Json>)> done) {
  read_one(impl_->group, impl_->snapshot, saga_id,
           [done = std::move(done)](std::optional<std::string> text, std::exception_ptr) {
             if (!text) return done(std::nullopt);
             done(Json::parse(*text, nullptr, false));
           });
}

void SqliteSagaLog::find_by_idem(const std::string& key,
                           std::function<void(std::optional<std::string>, std::exception_ptr)> done) {
  read_one(impl_->group, impl_->by_idem, key, std::move(done));
}

void SqliteSagaLog::forget(const std::string& saga_id) {
  impl_->group.run([&] {
    for (Stmt* s : {&impl_->forget_events, &impl_->forget_saga}) {
      s->reset();
      s->bind(1, saga_id);
      s->step();
      s->reset();
    }
    return true;
  });
}

std::vector<std::string> SqliteSagaLog::unfinished() {
  // Reads go through the group commit too: one connection, one thread at a time,
  // and the answer leaves only after the batch it saw is committed.
  std::vector<std::string> out;
  impl_->group.run([&] {
    auto& s = impl_->unfinished;
    s.reset();
    while (s.step()) out.push_back(s.text(0));
    s.reset();
    return false;
  });
  return out;
}

std::vector<Event> SqliteSagaLog::events(const std::string& saga_id) {
  // Reads go through the group commit too: one connection, one thread at a time,
  // and the answer leaves only after the batch it saw is committed.
  std::vector<Event> out;
  impl_->group.run([&] {
    auto& s = impl_->events;
    s.reset();
    s.bind(1, saga_id);
    while (s.step()) {
      auto j = Json::parse(s.text(0), nullptr, false);
      if (j.is_discarded()) {
        s.reset();
        throw std::invalid_argument("saga " + saga_id + ": unreadable event in the log");
      }
      out.push_back(event_from_json(j));
    }
    s.reset();
    return false;
  });
  return out;
}

std::vector<Json> SqliteSagaLog::list(const std::string& estado, int limit) {
  // Reads go through the group commit too: one connection, one thread at a time,
  // and the answer leaves only after the batch it saw is committed.
  std::vector<Json> out;
  impl_->group.run([&] {
    auto& s = estado.empty() ? impl_->list_all : impl_->list_state;
    s.reset();
    if (estado.empty()) {
      s.bind(1, static_cast<std::int64_t>(limit));
    } else {
      s.bind(1, estado).bind(2, static_cast<std::int64_t>(limit));
    }
    while (s.step()) out.push_back(Json::parse(s.text(0)));
    s.reset();
    return false;
  });
  return out;
}

void SqliteSagaLog::reset() {
  impl_->group.run([&] {
    impl_->db.exec("DELETE FROM events; DELETE FROM sagas;");
    return true;
  });
}

}  // namespace sagalab

namespace sagalab {
void SqliteSagaLog::close() { impl_->group.shutdown(); }
void SqliteSagaLog::observe_batches(std::function<void(std::size_t)> f) { impl_->group.on_batch = std::move(f); }
}  // namespace sagalab
