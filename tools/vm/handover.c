// SPDX-License-Identifier: GPL-2.0
/*
 * Same-host handover of a running vmpf-vm guest: see handover.h.
 */
#include <errno.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "handover.h"
#include "vm.h"

#define HANDOVER_MAGIC	"VMPFHO1"

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1000000000ULL + ts.tv_nsec;
}

static int sock_addr(const char *path, struct sockaddr_un *a)
{
	memset(a, 0, sizeof(*a));
	a->sun_family = AF_UNIX;
	if (strlen(path) >= sizeof(a->sun_path))
		return -ENAMETOOLONG;
	strcpy(a->sun_path, path);
	return 0;
}

int handover_listen(const char *path)
{
	struct sockaddr_un a;
	int fd, ret;

	ret = sock_addr(path, &a);
	if (ret)
		return ret;
	/* /run may be missing in a minimal root (the test initramfs). */
	if (mkdir("/run", 0755) && errno != EEXIST)
		return -errno;
	if (mkdir(HANDOVER_DIR, 0700) && errno != EEXIST)
		return -errno;
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	unlink(path);
	if (bind(fd, (struct sockaddr *)&a, sizeof(a)) || listen(fd, 1)) {
		ret = -errno;
		close(fd);
		return ret;
	}
	return fd;
}

void handover_close(int lfd, const char *path)
{
	if (lfd >= 0) {
		close(lfd);
		unlink(path);
	}
}

/* Read exactly @len bytes; 0, or -errno (-EPIPE: the peer went). */
static int read_all(int fd, void *buf, size_t len)
{
	ssize_t n;

	while (len) {
		n = read(fd, buf, len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return n ? -errno : -EPIPE;
		buf = (char *)buf + n;
		len -= n;
	}
	return 0;
}

/* Hand the paused VM to the peer on @conn: 0 once it says it resumed. */
static int handover_send(int conn, struct vm *vm, int mem_fd, int session,
			 uint64_t pause_ns, char *err, size_t errlen)
{
	struct handover_msg msg = { .magic = HANDOVER_MAGIC };
	char cbuf[CMSG_SPACE(sizeof(int))] = { 0 };
	struct iovec iov;
	struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = cbuf,
			     .msg_controllen = sizeof(cbuf) };
	struct cmsghdr *c = CMSG_FIRSTHDR(&mh);
	struct pollfd p = { .fd = conn, .events = POLLIN };
	size_t len, total, sent = 0;
	char *buf, word;
	void *blob;
	ssize_t n;
	int i;

	if (vm_save_state(vm, &blob, &len)) {
		snprintf(err, errlen, "cannot save the device state: %s", vm->error);
		return -1;
	}
	msg.ram_bytes = vm->cfg.ram_bytes;
	for (i = 0; i < 2; i++)
		msg.mem_off[i] = vm->cfg.mem_off[i];
	msg.state_len = len;
	msg.pause_ns = pause_ns;
	msg.session = session;
	/* Header and state in one buffer; the descriptor rides on its start. */
	total = sizeof(msg) + len;
	buf = malloc(total);
	if (!buf) {
		free(blob);
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	memcpy(buf, &msg, sizeof(msg));
	memcpy(buf + sizeof(msg), blob, len);
	free(blob);
	iov = (struct iovec){ .iov_base = buf, .iov_len = total };
	c->cmsg_level = SOL_SOCKET;
	c->cmsg_type = SCM_RIGHTS;
	c->cmsg_len = CMSG_LEN(sizeof(int));
	memcpy(CMSG_DATA(c), &mem_fd, sizeof(int));
	do
		n = sendmsg(conn, &mh, MSG_NOSIGNAL);
	while (n < 0 && errno == EINTR);
	sent = n > 0 ? n : 0;
	/* The rest, if the socket took only part of it. */
	while (n >= 0 && sent < total) {
		n = send(conn, buf + sent, total - sent, MSG_NOSIGNAL);
		if (n < 0 && errno == EINTR)
			n = 0;
		sent += n > 0 ? n : 0;
	}
	free(buf);
	if (sent < total) {
		snprintf(err, errlen, "cannot send the VM: %s", strerror(errno));
		return -1;
	}
	/* The new VMM creates its VM, loads the state, resumes: 60 s at most. */
	if (poll(&p, 1, 60000) != 1 || read_all(conn, &word, 1)) {
		snprintf(err, errlen, "the new VMM went away or did not answer in 60 s");
		return -1;
	}
	if (word != 'R') {
		snprintf(err, errlen, "the new VMM could not resume the guest");
		return -1;
	}
	return 0;
}

int handover_serve(int lfd, struct vm *vm, int mem_fd, int session,
		   double seconds, const char *checksums, char *err, size_t errlen)
{
	struct pollfd p = { .fd = lfd, .events = POLLIN };
	uint64_t pause_ns;
	int conn, ret;

	ret = poll(&p, 1, (int)(seconds * 1000));
	if (ret <= 0)
		return 0;
	conn = accept4(lfd, NULL, NULL, SOCK_CLOEXEC);
	if (conn < 0)
		return 0;
	vm_pause(vm);
	pause_ns = now_ns();
	if (checksums && vm_write_checksums(vm, checksums)) {
		snprintf(err, errlen, "cannot write checksums to %s", checksums);
		ret = -1;
	} else {
		ret = handover_send(conn, vm, mem_fd, session, pause_ns, err, errlen);
	}
	close(conn);
	if (ret) {
		/* Not handed over: the guest runs on here, untouched. */
		vm_resume(vm);
		return -1;
	}
	return 1;
}

int handover_take(const char *path, struct handover_msg *msg, void **state,
		  int *mem_fd, char *err, size_t errlen)
{
	char cbuf[CMSG_SPACE(sizeof(int))] = { 0 };
	struct iovec iov = { .iov_base = msg, .iov_len = sizeof(*msg) };
	struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = cbuf,
			     .msg_controllen = sizeof(cbuf) };
	struct sockaddr_un a;
	struct cmsghdr *c;
	int fd, ret;
	ssize_t n;

	*state = NULL;
	*mem_fd = -1;
	ret = sock_addr(path, &a);
	fd = ret ? -1 : socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0 || connect(fd, (struct sockaddr *)&a, sizeof(a))) {
		ret = ret ? ret : -errno;
		snprintf(err, errlen, "cannot connect to %s: %s", path, strerror(-ret));
		if (fd >= 0)
			close(fd);
		return ret;
	}
	n = recvmsg(fd, &mh, MSG_WAITALL | MSG_CMSG_CLOEXEC);
	c = CMSG_FIRSTHDR(&mh);
	/* A descriptor that came is ours to close, whatever came with it. */
	if (c && c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_RIGHTS &&
	    c->cmsg_len == CMSG_LEN(sizeof(int)))
		memcpy(mem_fd, CMSG_DATA(c), sizeof(int));
	if (n != sizeof(*msg) || memcmp(msg->magic, HANDOVER_MAGIC, sizeof(msg->magic)) ||
	    *mem_fd < 0 || msg->state_len > (64 << 20)) {
		snprintf(err, errlen, "%s: not a vmpf-vm handing a VM over", path);
		ret = -EPROTO;
		goto err;
	}
	*state = malloc(msg->state_len ? msg->state_len : 1);
	ret = *state ? read_all(fd, *state, msg->state_len) : -ENOMEM;
	if (ret) {
		snprintf(err, errlen, "cannot receive the device state: %s", strerror(-ret));
		goto err;
	}
	return fd;
err:
	handover_reply(fd, 'F');
	close(fd);
	if (*mem_fd >= 0)
		close(*mem_fd);
	*mem_fd = -1;
	free(*state);
	*state = NULL;
	return ret;
}

int handover_reply(int sock, char what)
{
	return send(sock, &what, 1, MSG_NOSIGNAL) == 1 ? 0 : -errno;
}
