/* SPDX-License-Identifier: GPL-2.0 */
/*
 * A small QMP client (QEMU's JSON monitor protocol over a UNIX socket):
 * enough to drive a migration from vmpf-ctl.  Replies are kept as text;
 * qmp_json_str()/qmp_json_bool() pick a named member out of one.
 */
#ifndef VMPF_QMP_H
#define VMPF_QMP_H
#include <stddef.h>
#include <sys/types.h>

struct qmp {
	int fd;
	pid_t pid;		/* QEMU's, from SO_PEERCRED */
	size_t len;		/* bytes buffered in @buf */
	char buf[1 << 16];
	char reply[1 << 16];	/* the last reply line */
};

/* Connect, read the greeting, negotiate.  0, or -1 with a sentence in @why. */
int qmp_open(struct qmp *q, const char *path, char *why, size_t len);
/* Try to connect for up to @ms milliseconds (a QEMU that is starting). */
int qmp_open_wait(struct qmp *q, const char *path, int ms, char *why, size_t len);
void qmp_close(struct qmp *q);
/*
 * Run @cmd with @args (a JSON object, or NULL) and, if @fd >= 0, that
 * descriptor passed along (SCM_RIGHTS, for getfd).  0 with the reply line
 * in @q->reply; -1 with QEMU's error (or why it could not be asked) in @why.
 */
int qmp_exec(struct qmp *q, const char *cmd, const char *args, int fd,
	     char *why, size_t len);
/* The string member @key of the JSON text @json, first match; 0 or -1. */
int qmp_json_str(const char *json, const char *key, char *out, size_t len);
/* The boolean member @key: 1 true, 0 false, -1 absent. */
int qmp_json_bool(const char *json, const char *key);
/* The number member @key, or -1 if absent. */
long long qmp_json_num(const char *json, const char *key);
#endif /* VMPF_QMP_H */
