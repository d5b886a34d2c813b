// A test CA and server certificates it signs, made with the openssl binary (Debian's openssl,
// which the TLS tests need anyway), in a fresh temporary directory. Shared by the HTTPS upstream
// test (tls_test.cpp) and the TLS listener tests (tls_listener_test.cpp).
#pragma once

#include <stdlib.h>

#include <string>

#include "tests/integration/harness.hpp"

namespace itest {

struct Pki {
  std::string dir, ca, cert, key;
};

// Issues dir/NAME.pem and dir/NAME.key, signed by the CA of pki, for the given subjectAltName.
inline void issue_certificate(const Pki& pki, const std::string& name, const std::string& san) {
  std::string script = "set -e; cd " + pki.dir +
                       "; openssl req -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes "
                       "-keyout " +
                       name + ".key -out " + name +
                       ".csr -subj /CN=ssegw-test-server 2>/dev/null"
                       "; printf 'subjectAltName=" +
                       san + "\\n' > " + name +
                       ".cnf"
                       "; openssl x509 -req -in " +
                       name + ".csr -CA ca.pem -CAkey ca.key -CAcreateserial -out " + name +
                       ".pem -days 2 -extfile " + name + ".cnf 2>/dev/null";
  ProcessResult r = run_process({"/bin/sh", "-c", script});
  REQUIRE_MESSAGE(r.status == 0, r.output);
}

// A CA, and a server certificate it signed for the given subjectAltName (server.pem, server.key).
inline Pki make_pki(const std::string& san) {
  char tmpl[] = "/tmp/ssegw-tls-XXXXXX";
  REQUIRE(mkdtemp(tmpl) != nullptr);
  Pki p{tmpl, std::string(tmpl) + "/ca.pem", std::string(tmpl) + "/server.pem",
        std::string(tmpl) + "/server.key"};
  std::string script = "set -e; cd " + p.dir +
                       "; openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 "
                       "-nodes -keyout ca.key -out ca.pem -days 2 -subj /CN=ssegw-test-ca "
                       "2>/dev/null";
  ProcessResult r = run_process({"/bin/sh", "-c", script});
  REQUIRE_MESSAGE(r.status == 0, r.output);
  issue_certificate(p, "server", san);
  return p;
}

}  // namespace itest
