// scheduler.h — the engine of `bytelm serve`: one thread owns the model and decodes every running request
// together, one batched step per byte (continuous batching: rows join and leave between steps). HTTP
// threads only submit jobs and read their bytes from the job's channel; they never touch the model.
//
// The decoding is generate/batch_decoder.h's: with the models that have row decoding (Transformer, MEGABYTE)
// every request decodes at its own position, a joining request prefills its prompt in chunks inside the
// running steps (nobody pauses) and may start from a prefix another row's cache holds; with the others a
// join restarts the batch, so a queued request joins once it has waited as many steps as it would pause the
// running rows (see admit()). Rows that leave (finished, cancelled, client gone) free their slot at once.
// Every request samples from its own generator seeded from its seed, so its bytes do not depend on its
// neighbours (up to floating-point ties). The scheduler keeps admission, queueing and streaming.
#pragma once
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "generate/batch_decoder.h"
#include "generate/speculative.h"
#include "serve/api.h"
#include "util/inference.h"

namespace bytelm {
class LanguageModelImpl;
class Tokenizer;
}  // namespace bytelm

namespace bytelm::serve {

class Metrics;
using Clock = std::chrono::steady_clock;

using Alternatives = std::vector<std::pair<uint8_t, float>>;  // bytes and their natural-log probabilities

// One request's channel between the engine thread and its HTTP thread.
class Job {
 public:
  Job(CompletionRequest request, uint64_t seed) : req(std::move(request)), seed(seed), submitted(Clock::now()) {}
  const CompletionRequest req;
  const uint64_t seed;
  const Clock::time_point submitted;
  int64_t queued_step = -1;  // the engine's step count when it first saw the job queued (engine thread)

  // HTTP side. Waits up to `timeout` for bytes or the end; moves what was produced into `piece`. Returns
  // true once the job has finished and everything was taken (then finish_reason()/error() are set).
  bool take(Piece& piece, std::chrono::milliseconds timeout);
  void cancel() { cancelled_ = true; }  // the client left: the engine drops the row at its next step
  std::string finish_reason() const;
  std::string error() const;  // non-empty: the request failed (server error or shutdown)
  int64_t generated() const;  // bytes generated (a stop string included)

  // Engine side.
  bool cancelled() const { return cancelled_; }
  // top: per byte, the likeliest bytes (requests with `logprobs`; else empty).
  void push(const std::string& bytes, const std::vector<float>& bits, const std::vector<Alternatives>& top = {});
  void finish(const std::string& reason, int64_t generated, const std::string& error = "");

 private:
  std::atomic<bool> cancelled_{false};
  mutable std::mutex mu_;
  std::condition_variable cv_;
  Piece pending_;
  int64_t taken_ = 0;  // bytes handed to the HTTP side so far (the next piece's offset)
  bool finished_ = false;
  std::string finish_reason_, error_;
  int64_t generated_ = 0;
};

// The inference settings (util/inference.h: device, precision, decode weights) and the queue's sizes.
struct SchedulerOptions : InferenceSettings {
  int64_t parallel = 4;        // rows decoded together (slots)
  int64_t max_queue = 16;      // requests waiting for a slot; more get 503
  int64_t prefill_chunk = 64;  // prompt bytes a joining row feeds per step (row positions)
  bool prefix_reuse = true;    // start from a prefix another row's cache holds (row positions)
  // Speculative decoding (serve --draft): the batch decoder runs a speculative round per row and step with
  // this draft (batch_decoder.h).
  std::shared_ptr<LanguageModelImpl> draft;
  SpeculativeOptions spec;
};

class Scheduler {
 public:
  // tokenizer: the BPE baseline's (its requests are batched like the byte models', over tokens).
  Scheduler(std::shared_ptr<LanguageModelImpl> model, std::shared_ptr<Tokenizer> tokenizer, SchedulerOptions opt,
            Metrics& metrics);
  ~Scheduler();

  // Queues a request. Throws ApiError 503 when the queue is full or the server is draining.
  std::shared_ptr<Job> submit(CompletionRequest req);
  // Runs `task` on the engine thread between two steps (e.g. scoring) and waits for it; rethrows.
  void run_on_engine(const std::function<void()>& task);
  // Stops taking requests (submit throws 503).
  void drain();
  bool draining() const { return draining_; }
  // Ends every running and queued request with `error` (finish_reason "cancelled").
  void cancel_all(const std::string& error);
  int64_t busy() const { return busy_; }  // running requests (rows not finished)
  int64_t queued() const;
  bool idle() const { return busy_ == 0 && queued() == 0; }

 private:
  struct Row;
  void loop();
  void admit(std::vector<std::shared_ptr<Job>>& joining);
  void step();
  void end_rows(const std::string& error);                  // ends every running row (finish_reason "cancelled")

  std::shared_ptr<LanguageModelImpl> model_;
  std::shared_ptr<Tokenizer> tokenizer_;
  SchedulerOptions opt_;
  Metrics& metrics_;

  mutable std::mutex mu_;  // guards queue_, tasks_, stop_
  std::condition_variable cv_;
  std::deque<std::shared_ptr<Job>> queue_;
  std::deque<std::function<void()>> tasks_;
  bool stop_ = false;
  std::atomic<bool> draining_{false};
  std::atomic<int64_t> busy_{0};

  // Engine-thread state.
  std::unique_ptr<BatchDecoder> decoder_;
  std::map<int64_t, std::unique_ptr<Row>> rows_;  // running requests by the decoder's row id
  int64_t steps_ = 0;                             // decoding steps so far
  std::thread thread_;
};

}  // namespace bytelm::serve
