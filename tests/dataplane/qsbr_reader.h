// SPDX-License-Identifier: Apache-2.0
// A reader of the data-plane tables as worker.cpp registers one with the RCU
// QSBR variable: online from construction, quiescent when told (a worker
// does so once per loop), offline and unregistered when it goes.
#pragma once

#include <rte_rcu_qsbr.h>

namespace turn::dptest {

class QsbrReader {
 public:
  QsbrReader(rte_rcu_qsbr* v, unsigned id) : v_(v), id_(id) {
    rte_rcu_qsbr_thread_register(v_, id_);
    rte_rcu_qsbr_thread_online(v_, id_);
  }
  ~QsbrReader() {
    rte_rcu_qsbr_thread_offline(v_, id_);
    rte_rcu_qsbr_thread_unregister(v_, id_);
  }
  QsbrReader(const QsbrReader&) = delete;
  QsbrReader& operator=(const QsbrReader&) = delete;
  void quiescent() { rte_rcu_qsbr_quiescent(v_, id_); }

 private:
  rte_rcu_qsbr* v_;
  unsigned id_;
};

}  // namespace turn::dptest
