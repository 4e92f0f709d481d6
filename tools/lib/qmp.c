// SPDX-License-Identifier: GPL-2.0
/*
 * A small QMP client, see qmp.h.  QEMU sends one JSON object per line:
 * a greeting, then for each command either {"return": ...} or
 * {"error": {"class": ..., "desc": ...}}, with {"event": ...} lines in
 * between at any time, which are skipped.
 */
#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "qmp.h"

#define QMP_TIMEOUT_MS	60000
#define QMP_GREETING_MS	10000

/* One line from QEMU into @q->reply, waiting @ms at most; 0, or -errno. */
static int qmp_line_wait(struct qmp *q, int ms)
{
	for (;;) {
		char *nl = memchr(q->buf, '\n', q->len);
		struct pollfd p = { .fd = q->fd, .events = POLLIN };
		ssize_t n;

		if (nl) {
			size_t l = nl - q->buf + 1;
			size_t c = l < sizeof(q->reply) ? l : sizeof(q->reply) - 1;

			memcpy(q->reply, q->buf, c);
			q->reply[c] = 0;
			memmove(q->buf, q->buf + l, q->len - l);
			q->len -= l;
			return 0;
		}
		if (q->len == sizeof(q->buf))
			return -E2BIG;
		n = poll(&p, 1, ms);
		if (n == 0)
			return -ETIMEDOUT;
		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		n = read(q->fd, q->buf + q->len, sizeof(q->buf) - q->len);
		if (n == 0)
			return -ECONNRESET;
		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		q->len += n;
	}
}

static int qmp_line(struct qmp *q)
{
	return qmp_line_wait(q, QMP_TIMEOUT_MS);
}

static const char *qmp_skip_ws(const char *p)
{
	while (*p == ' ' || *p == '\t' || *p == '\r' || *p == '\n')
		p++;
	return p;
}

/* Where the value of member @key starts, or NULL. */
static const char *qmp_json_find(const char *json, const char *key)
{
	size_t kl = strlen(key);
	const char *p = json;

	while ((p = strchr(p, '"'))) {
		if (!strncmp(p + 1, key, kl) && p[1 + kl] == '"') {
			const char *v = qmp_skip_ws(p + 2 + kl);

			if (*v == ':')
				return qmp_skip_ws(v + 1);
		}
		p++;
	}
	return NULL;
}

int qmp_json_str(const char *json, const char *key, char *out, size_t len)
{
	const char *v = qmp_json_find(json, key);
	size_t n = 0;

	if (!v || *v != '"' || !len)
		return -1;
	for (v++; *v && *v != '"'; v++) {
		if (*v == '\\' && v[1])
			v++;
		if (n + 1 < len)
			out[n++] = *v;
	}
	out[n] = 0;
	return 0;
}

int qmp_json_bool(const char *json, const char *key)
{
	const char *v = qmp_json_find(json, key);

	if (!v)
		return -1;
	return !strncmp(v, "true", 4);
}

long long qmp_json_num(const char *json, const char *key)
{
	const char *v = qmp_json_find(json, key);

	return v ? strtoll(v, NULL, 10) : -1;
}

static int qmp_send(struct qmp *q, const char *text, int fd)
{
	union {
		char buf[CMSG_SPACE(sizeof(int))];
		struct cmsghdr align;
	} u;
	struct iovec iov = { .iov_base = (void *)text, .iov_len = strlen(text) };
	struct msghdr m = { .msg_iov = &iov, .msg_iovlen = 1 };

	if (fd >= 0) {
		struct cmsghdr *c;

		memset(&u, 0, sizeof(u));
		m.msg_control = u.buf;
		m.msg_controllen = sizeof(u.buf);
		c = CMSG_FIRSTHDR(&m);
		c->cmsg_level = SOL_SOCKET;
		c->cmsg_type = SCM_RIGHTS;
		c->cmsg_len = CMSG_LEN(sizeof(int));
		memcpy(CMSG_DATA(c), &fd, sizeof(int));
	}
	while (iov.iov_len) {
		ssize_t n = sendmsg(q->fd, &m, MSG_NOSIGNAL);

		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		iov.iov_base = (char *)iov.iov_base + n;
		iov.iov_len -= n;
		m.msg_control = NULL;
		m.msg_controllen = 0;
	}
	return 0;
}

int qmp_exec(struct qmp *q, const char *cmd, const char *args, int fd,
	     char *why, size_t len)
{
	char text[4096], desc[512];
	int ret;

	snprintf(text, sizeof(text), "{\"execute\": \"%s\"%s%s}\n", cmd,
		 args ? ", \"arguments\": " : "", args ? args : "");
	ret = qmp_send(q, text, fd);
	while (!ret) {
		ret = qmp_line(q);
		if (ret)
			break;
		if (qmp_json_find(q->reply, "event"))
			continue;
		if (qmp_json_find(q->reply, "return"))
			return 0;
		if (qmp_json_find(q->reply, "error")) {
			if (qmp_json_str(q->reply, "desc", desc, sizeof(desc)))
				snprintf(desc, sizeof(desc), "%.400s", q->reply);
			snprintf(why, len, "QEMU refused %s: %s", cmd, desc);
			return -1;
		}
	}
	snprintf(why, len, "QEMU's monitor did not answer %s: %s", cmd,
		 ret == -ECONNRESET ? "the connection closed (QEMU exited?)" : strerror(-ret));
	return -1;
}

int qmp_open(struct qmp *q, const char *path, char *why, size_t len)
{
	struct sockaddr_un a = { .sun_family = AF_UNIX };
	struct ucred cred;
	socklen_t cl = sizeof(cred);
	int ret;

	memset(q, 0, sizeof(*q));
	q->fd = -1;
	if (strlen(path) >= sizeof(a.sun_path)) {
		snprintf(why, len, "the QMP socket path %s is too long", path);
		return -1;
	}
	strcpy(a.sun_path, path);
	q->fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (q->fd < 0 || connect(q->fd, (struct sockaddr *)&a, sizeof(a))) {
		snprintf(why, len, "cannot connect to QEMU's QMP socket %s: %s (start QEMU with -qmp unix:%s,server=on,wait=off)",
			 path, strerror(errno), path);
		qmp_close(q);
		return -1;
	}
	if (getsockopt(q->fd, SOL_SOCKET, SO_PEERCRED, &cred, &cl) || cred.pid <= 0) {
		snprintf(why, len, "cannot tell which process serves %s: %s", path, strerror(errno));
		qmp_close(q);
		return -1;
	}
	q->pid = cred.pid;
	/* QEMU greets one client per -qmp socket: another may hold it. */
	ret = qmp_line_wait(q, QMP_GREETING_MS);
	if (ret == -ETIMEDOUT) {
		snprintf(why, len, "QEMU did not greet on %s within %d s: another client holds that QMP socket (QEMU serves one per -qmp; give QEMU another -qmp for vmpf-ctl)",
			 path, QMP_GREETING_MS / 1000);
		qmp_close(q);
		return -1;
	}
	if (ret || !qmp_json_find(q->reply, "QMP")) {
		snprintf(why, len, "%s does not speak QMP (no greeting: %s)", path,
			 ret ? strerror(-ret) : "unexpected text");
		qmp_close(q);
		return -1;
	}
	if (qmp_exec(q, "qmp_capabilities", NULL, -1, why, len)) {
		qmp_close(q);
		return -1;
	}
	return 0;
}

int qmp_open_wait(struct qmp *q, const char *path, int ms, char *why, size_t len)
{
	struct timespec t = { 0, 50 * 1000 * 1000 };

	for (;;) {
		if (!qmp_open(q, path, why, len))
			return 0;
		if ((ms -= 50) <= 0)
			return -1;
		nanosleep(&t, NULL);
	}
}

void qmp_close(struct qmp *q)
{
	if (q->fd >= 0)
		close(q->fd);
	q->fd = -1;
}
