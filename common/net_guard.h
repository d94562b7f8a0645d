#ifndef GENQ_NET_GUARD_H
#define GENQ_NET_GUARD_H

#include <netinet/in.h>
#include <stddef.h>
#include <sys/socket.h>

/* Where genq may send a request a user named (a completion webhook's URL):
 * never to this machine, the private network or a cloud's metadata
 * service (SPEC §4). The API checks the URL when a job is submitted; the
 * worker checks it again, then every address its host resolves to, and
 * connects only to the address it checked (docs/webhooks.md).
 *
 * Refused, unless an operator allowlisted the network
 * (GENQ_WEBHOOK_ALLOW_NETS, exact CIDRs, empty by default):
 *   IPv4  0/8 10/8 100.64/10 127/8 169.254/16 172.16/12 192.0.0/24
 *         192.168/16 198.18/15 224/4 240/4 (255.255.255.255 among them)
 *   IPv6  :: ::1 fc00::/7 fe80::/10 fec0::/10 ff00::/8, and an IPv4 address
 *         carried in IPv6 (mapped ::ffff:0:0/96, compatible ::/96, NAT64
 *         64:ff9b::/96, 6to4 2002::/16) is judged as that IPv4 address. */

#define NET_GUARD_NETS_MAX 16

typedef struct {
  int family;             /* AF_INET or AF_INET6 */
  unsigned char addr[16]; /* network order; 4 bytes for AF_INET */
  int prefix;
} net_guard_net;

typedef struct {
  net_guard_net nets[NET_GUARD_NETS_MAX];
  int n;
} net_guard_nets;

/* Parses a comma-separated list of CIDRs ("127.0.0.1/32,fd00::/8"; a bare
 * address is /32 or /128) into out. NULL or "" is the empty list. Host bits
 * past the prefix must be zero. Returns 0, or -1 with a message naming
 * GENQ_WEBHOOK_ALLOW_NETS. */
int net_guard_nets_parse(const char *list, net_guard_nets *out, char *err, size_t errlen);

/* Why the address may not be connected to ("loopback", "private",
 * "link-local", ...), or NULL when it may: it is in no refused range, or in
 * a network of allow (NULL: none). family AF_INET (addr 4 bytes) or
 * AF_INET6 (16 bytes); any other family is refused ("unsupported"). */
const char *net_guard_refused(int family, const unsigned char *addr, const net_guard_nets *allow);
/* The same for a socket address (sockaddr_in or sockaddr_in6). */
const char *net_guard_refused_sockaddr(const struct sockaddr *sa, const net_guard_nets *allow);

/* A webhook URL, checked. */
typedef struct {
  char host[256]; /* as in the URL, IPv6 without brackets */
  int port;       /* the URL's, else 443 or 80 */
  int https;
  int literal;                  /* host is an IP address */
  struct sockaddr_storage addr; /* that address (with port), when literal */
} net_guard_url;

/* Checks a URL a user gave as where to POST (libcurl's URL parser reads
 * it): https (http only with allow_http), no user name or password, a host;
 * a host that is an IP address must not be refused (net_guard_refused).
 * Returns 0 and fills out (NULL: not filled), or -1 with a message for
 * people in msg (what is wrong, not the URL). */
int net_guard_url_check(const char *url, int allow_http, const net_guard_nets *allow,
                        net_guard_url *out, char *msg, size_t msglen);

#endif
