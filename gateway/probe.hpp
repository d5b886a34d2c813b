// `ssegw --probe URL`: a tiny HTTP/1.1 GET for container health checks (Docker's HEALTHCHECK,
// a Kubernetes exec probe), so that the image needs no curl or wget.
//
// URL is http://HOST[:PORT][/PATH] (port 80 and path "/" by default). HOST is a name, an IPv4
// address or a bracketed IPv6 address; https, user info and fragments are refused. The whole
// exchange (resolution of a literal address, connect, request, status line) is bounded by a
// 2 s deadline; resolving a name uses the system resolver, which has its own timeouts.
#pragma once

#include <string>

// Returns the process exit status: 0 when the answer's status is 2xx, 1 otherwise, with one line
// on stderr saying why. Never 2, which Docker reserves in a HEALTHCHECK.
int run_probe(const std::string& url);
