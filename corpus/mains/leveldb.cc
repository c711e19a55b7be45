// talos corpus driver for LevelDB (written for talos, not upstream code).
// Opens a database in an in-memory Env (helpers/memenv), writes N keys in
// batches, reads them back, iterates forwards and backwards, takes a
// snapshot, deletes and compacts, and prints a checksum. Keeps the write
// path, memtable, table builder/reader, compaction and iterators live. Uses
// the C++ library as a C++ program does: std::string, std::vector,
// std::unique_ptr and an exception handler, so the binary has the landing
// pads and cleanups real C++ code has.
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <new>
#include <stdexcept>
#include <string>
#include <vector>

#include "helpers/memenv/memenv.h"
#include "leveldb/db.h"
#include "leveldb/env.h"
#include "leveldb/filter_policy.h"
#include "leveldb/write_batch.h"

namespace {

std::string Key(int i) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "key%08d", i);
  return std::string(buf);
}

std::string Value(int i) { return std::string(16 + i % 100, static_cast<char>('a' + i % 26)); }

void Check(const leveldb::Status& s, const char* what) {
  if (!s.ok()) throw std::runtime_error(std::string(what) + ": " + s.ToString());
}

unsigned long Run(int n) {
  std::unique_ptr<leveldb::Env> env(leveldb::NewMemEnv(leveldb::Env::Default()));
  std::unique_ptr<const leveldb::FilterPolicy> bloom(leveldb::NewBloomFilterPolicy(10));
  leveldb::Options options;
  options.create_if_missing = true;
  options.env = env.get();
  options.filter_policy = bloom.get();
  options.write_buffer_size = 64 << 10;
  leveldb::DB* raw = nullptr;
  Check(leveldb::DB::Open(options, "/talos-corpus-db", &raw), "open");
  std::unique_ptr<leveldb::DB> db(raw);

  for (int i = 0; i < n; i += 100) {
    leveldb::WriteBatch batch;
    for (int j = i; j < i + 100 && j < n; j++) batch.Put(Key(j), Value(j));
    Check(db->Write(leveldb::WriteOptions(), &batch), "write");
  }
  const leveldb::Snapshot* snap = db->GetSnapshot();
  for (int i = 0; i < n; i += 3) Check(db->Delete(leveldb::WriteOptions(), Key(i)), "delete");

  unsigned long sum = 0;
  std::string v;
  for (int i = 0; i < n; i++) {
    leveldb::Status s = db->Get(leveldb::ReadOptions(), Key(i), &v);
    if (s.ok()) {
      if (v != Value(i)) throw std::runtime_error("bad value for " + Key(i));
      sum += v.size();
    } else if (!s.IsNotFound()) {
      Check(s, "get");
    }
  }
  leveldb::ReadOptions at_snap;
  at_snap.snapshot = snap;
  std::vector<std::string> keys;
  std::unique_ptr<leveldb::Iterator> it(db->NewIterator(at_snap));
  for (it->SeekToFirst(); it->Valid(); it->Next()) keys.push_back(it->key().ToString());
  for (it->SeekToLast(); it->Valid(); it->Prev()) sum += it->value().size() & 7;
  Check(it->status(), "iterate");
  it.reset();
  db->ReleaseSnapshot(snap);
  db->CompactRange(nullptr, nullptr);
  std::string stats;
  if (db->GetProperty("leveldb.stats", &stats)) sum += stats.size() > 0;
  return sum * 31 + keys.size();
}

}  // namespace

int main(int argc, char** argv) {
  int n = argc > 1 ? std::atoi(argv[1]) : 5000;
  try {
    std::printf("%lu\n", Run(n > 0 ? n : 5000));
  } catch (const std::bad_alloc&) {
    std::fputs("out of memory\n", stderr);
    return 2;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "error: %s\n", e.what());
    return 1;
  }
  return 0;
}
