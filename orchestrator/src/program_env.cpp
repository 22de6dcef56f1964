// The orchestrator program's environment (see orchestrator_program.hpp):
// what the Orchestrator class runs on outside the simulator.
#include <utility>  // before Boost 1.74 asio, which uses std::exchange without it

#include <boost/asio.hpp>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <iostream>
#include <mutex>
#include <random>
#include <thread>

#include "sagalab/async_client.hpp"
#include "sagalab/http_common.hpp"
#include "sagalab/metrics.hpp"
#include "sagalab/orchestrator_program.hpp"

namespace sagalab {

namespace asio = boost::asio;

namespace {

class AsioStrand final : public Strand {
 public:
  explicit AsioStrand(asio::io_context& io) : strand(asio::make_strand(io)) {}
  void post(std::function<void()> f) override { asio::post(strand, std::move(f)); }
  void dispatch(std::function<void()> f) override { asio::dispatch(strand, std::move(f)); }
  asio::strand<asio::io_context::executor_type> strand;
};

class AsioTimer final : public Timer {
 public:
  AsioTimer(AsioStrand& on, std::int64_t delay_ms, std::function<void()> fire)
      : timer_(on.strand, std::chrono::milliseconds(delay_ms)) {
    timer_.async_wait([fire = std::move(fire)](const boost::system::error_code& ec) {
      if (!ec) fire();
    });
  }
  void cancel() override { timer_.cancel(); }

 private:
  asio::steady_timer timer_;
};

// A thread that runs tick() every period until it is destroyed.
class ThreadTicker final : public Ticker {
 public:
  ThreadTicker(std::int64_t every_ms, std::function<void()> tick) {
    thread_ = std::thread([this, every_ms, tick = std::move(tick)] {
      std::unique_lock lock(mutex_);
      while (!cv_.wait_for(lock, std::chrono::milliseconds(every_ms), [this] { return stop_; })) {
        lock.unlock();
        tick();
        lock.lock();
      }
    });
  }
  ~ThreadTicker() override {
    {
      std::lock_guard lock(mutex_);
      stop_ = true;
    }
    cv_.notify_all();
    if (thread_.joinable()) {
      if (thread_.get_id() == std::this_thread::get_id()) {
        thread_.detach();  // destroyed from its own tick: the loop ends on its own
      } else {
        thread_.join();
      }
    }
  }

 private:
  std::mutex mutex_;
  std::condition_variable cv_;
  bool stop_ = false;
  std::thread thread_;
};

class AsioRuntime final : public Runtime {
 public:
  explicit AsioRuntime(asio::io_context& io) : io_(io) {}
  std::int64_t now_ms() override { return wall_ms(); }
  double monotonic_s() override {
    return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
  }
  std::unique_ptr<Strand> make_strand() override { return std::make_unique<AsioStrand>(io_); }
  std::unique_ptr<Timer> start_timer(Strand& on, std::int64_t delay_ms, std::function<void()> fire) override {
    return std::make_unique<AsioTimer>(static_cast<AsioStrand&>(on), delay_ms, std::move(fire));
  }
  std::unique_ptr<Ticker> every(std::int64_t every_ms, std::function<void()> tick) override {
    return std::make_unique<ThreadTicker>(every_ms, std::move(tick));
  }
  // Time-ordered: the wall clock's millisecond (12 hex digits), then 64
  // random bits (unique across replicas, as before). Sagas started close in
  // time get ids that sort close together, so the saga log's tables and the
  // services' (keyed by saga id, and by idempotency keys that begin with it)
  // take a group commit's inserts on a few pages at the right end of their
  // b-trees instead of one random page each: fewer pages written per commit.
  std::string new_saga_id() override {
    static thread_local std::mt19937_64 ids{std::random_device{}()};
    char buf[48];
    std::snprintf(buf, sizeof buf, "saga_%012llx%016llx", static_cast<unsigned long long>(wall_ms()) & 0xffffffffffffULL,
                  static_cast<unsigned long long>(ids()));
    return buf;
  }
  [[noreturn]] void fatal(const std::string& why) override { crash_now(why); }

 private:
  asio::io_context& io_;
};

// The services over HTTP: JSON bodies, the saga's headers, keep-alive pools.
class HttpTransport final : public Transport {
 public:
  HttpTransport(asio::io_context& io, const std::map<std::string, std::string>& urls, std::size_t pool_size) {
    for (const auto& [service, url] : urls) pools_[service] = std::make_unique<AsyncClientPool>(io, url, pool_size);
  }
  void call(StepCall call, CallMeta meta, std::function<void(CallOutcome)> done) override {
    auto pool = pools_.find(call.service);
    if (pool == pools_.end()) return done({std::nullopt, "no URL configured for service " + call.service});
    Json body = to_json(call.body, meta.saga_id);
    AsyncClientPool::Headers headers{{"X-Saga-Id", meta.saga_id},
                                     {"X-Saga-Step", *meta.step_name + (meta.compensation ? ":compensacion" : "")},
                                     {"X-Saga-Attempt", std::to_string(meta.attempt)},
                                     {"Idempotency-Key", meta.idempotency_key}};
    if (!meta.trace_id.empty()) headers.emplace_back("traceparent", "00-" + meta.trace_id + "-" + new_span_id() + "-01");
    pool->second->call(call.method, call.path, body.is_null() ? std::string() : body.dump(), std::move(headers),
                       meta.timeout_ms, [done = std::move(done)](HttpResult r) {
                         CallOutcome out;
                         if (r.answer) out.answer = reply_from_json(r.answer->status, r.answer->body);
                         out.error = std::move(r.error);
                         done(std::move(out));
                       });
  }

 private:
  std::map<std::string, std::unique_ptr<AsyncClientPool>> pools_;
};

// Crash points from the program's fault rules: a match ends the process.
class FaultCrashPoints final : public CrashPoints {
 public:
  explicit FaultCrashPoints(FaultGate& faults) : faults_(faults) {}
  bool crash(const SagaDefinition& def, const CrashSpot& spot) override {
    if (faults_.empty()) return false;
    FaultContext ctx;
    ctx.endpoint = crash_point_name(def, spot);
    ctx.saga_id = *spot.saga_id;
    ctx.attempt = spot.attempt;
    ctx.now_ms = wall_ms();
    if (auto f = faults_.match(ctx)) {
      if (f->action == FaultAction::CrashBefore || f->action == FaultAction::CrashAfter)
        crash_now("crash at " + ctx.endpoint + " of " + *spot.saga_id);
    }
    return false;
  }

 private:
  FaultGate& faults_;
};

// Prometheus metrics, and JSON log lines (each written by one call: lines
// from several threads never interleave).
class MetricsObserver final : public OrchestratorObserver {
 public:
  void saga_started() override { Metrics::get().sagas_started.Increment(); }
  void log_appended() override { Metrics::get().log_events.Increment(); }
  void state_changed(Estado before, Estado after, std::int64_t duration_ms) override {
    auto& m = Metrics::get();
    if (after == Estado::Atascada && before != Estado::Atascada) m.stuck.Increment();
    if (before == Estado::Atascada && after != Estado::Atascada) m.stuck.Decrement();
    if (is_terminal(after) && !is_terminal(before)) {
      m.sagas_finished.Add({{"estado", to_string(after)}}).Increment();
      m.saga_duration.Observe(static_cast<double>(duration_ms) / 1000.0);
    }
  }
  void stuck_held(int delta) override {
    if (delta > 0) Metrics::get().stuck.Increment();
    if (delta < 0) Metrics::get().stuck.Decrement();
  }
  void call_sent(const std::string& step, int attempt, bool compensation) override {
    auto& m = Metrics::get();
    if (attempt > 1) m.retries.Add({{"step", step}}).Increment();
    if (compensation) m.compensations.Add({{"step", step}}).Increment();
  }
  void call_answered(const std::string& step, bool compensation, Outcome outcome, double seconds) override {
    Metrics::get()
        .step_calls
        .Add({{"step", compensation ? step + ":compensacion" : step}, {"outcome", to_string(outcome)}},
             latency_buckets())
        .Observe(seconds);
  }
  void log(const Json& line, bool error) override { (error ? std::cerr : std::cout) << (line.dump() + "\n") << std::flush; }
};

}  // namespace

struct ProgramEnv::Impl {
  Impl(asio::io_context& io, const std::map<std::string, std::string>& urls, std::size_t pool_size, FaultGate& faults)
      : runtime(io), transport(io, urls, pool_size), crashes(faults) {}
  AsioRuntime runtime;
  HttpTransport transport;
  FaultCrashPoints crashes;
  MetricsObserver observer;
};

ProgramEnv::ProgramEnv(asio::io_context& io, const std::map<std::string, std::string>& service_urls,
                       std::size_t pool_size, FaultGate& faults)
    : impl_(std::make_unique<Impl>(io, service_urls, pool_size, faults)) {}

ProgramEnv::~ProgramEnv() = default;

OrchestratorEnv ProgramEnv::env(SagaLog& log) {
  return OrchestratorEnv{impl_->runtime, impl_->transport, log, &impl_->crashes, &impl_->observer};
}

}  // namespace sagalab
