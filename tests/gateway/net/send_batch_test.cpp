#include "gateway/net/send_batch.hpp"

#include <doctest/doctest.h>
#include <fcntl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <string>

using namespace ssegw;

TEST_CASE("net/send_batch: one submission sends to every socket, and a full one says EAGAIN") {
  auto batch = net::SendBatch::create();
  if (!batch) {
    MESSAGE("this kernel refuses io_uring: nothing to test");
    return;
  }
  int a[2], b[2];
  REQUIRE(socketpair(AF_UNIX, SOCK_STREAM, 0, a) == 0);
  REQUIRE(socketpair(AF_UNIX, SOCK_STREAM, 0, b) == 0);
  char one[] = "hello ", two[] = "world";
  iovec pieces[] = {{one, 6}, {two, 5}};
  batch->add(a[0], pieces, 2);
  batch->add(b[0], pieces + 1, 1);
  batch->run();
  REQUIRE(batch->results().size() == 2);
  CHECK(batch->results()[0] == 11);
  CHECK(batch->results()[1] == 5);
  char got[32] = {};
  CHECK(read(a[1], got, sizeof got) == 11);
  CHECK(std::string(got, 11) == "hello world");
  CHECK(read(b[1], got, sizeof got) == 5);

  // Fill b until the kernel takes nothing more: the batch's send must not wait for room.
  fcntl(b[0], F_SETFL, O_NONBLOCK);
  std::string block(64 * 1024, 'x');
  while (write(b[0], block.data(), block.size()) > 0) {
  }
  batch->clear();
  iovec big = {block.data(), block.size()};
  batch->add(b[0], &big, 1);
  batch->add(a[0], pieces, 1);
  batch->run();
  CHECK(batch->results()[0] == -EAGAIN);
  CHECK(batch->results()[1] == 6);
  CHECK_FALSE(batch->broken());
  for (int fd : {a[0], a[1], b[0], b[1]}) close(fd);
}
