/* A Kafka-protocol broker for tests: librdkafka's mock cluster on loopback.
 * Usage: mock-broker [brokers] [topic:partitions[:rf] ...]; prints the bootstrap list, then
 * answers "create <topic> <partitions> [rf]" lines on stdin with "ok" or "err <code> <msg>".
 * Exits on stdin EOF, SIGTERM or SIGINT. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <signal.h>
#include <poll.h>
#include <unistd.h>
#include <errno.h>
#include <librdkafka/rdkafka.h>
#include <librdkafka/rdkafka_mock.h> /* must come after rdkafka.h */

static volatile sig_atomic_t stop = 0;
static void on_sig(int sig) { (void)sig; stop = 1; }

static void create_topic(rd_kafka_mock_cluster_t *mc, const char *t, int p, int rf, int reply) {
        rd_kafka_resp_err_t err = rd_kafka_mock_topic_create(mc, t, p, rf);
        if (reply) {
                if (err) printf("err %d %s\n", err, rd_kafka_err2str(err));
                else printf("ok\n");
                fflush(stdout);
        } else if (err) {
                fprintf(stderr, "topic create %s failed: %s\n", t, rd_kafka_err2str(err));
        }
}

int main(int argc, char **argv) {
        int broker_cnt = argc > 1 ? atoi(argv[1]) : 1;
        if (broker_cnt < 1) broker_cnt = 1;
        char errstr[512];

        struct sigaction sa; memset(&sa, 0, sizeof(sa));
        sa.sa_handler = on_sig;          /* no SA_RESTART: poll() gets EINTR */
        sigaction(SIGTERM, &sa, NULL);
        sigaction(SIGINT, &sa, NULL);
        signal(SIGPIPE, SIG_IGN);

        rd_kafka_conf_t *conf = rd_kafka_conf_new();
        /* keep the bookkeeping client quiet; it never connects anywhere */
        rd_kafka_conf_set(conf, "log_level", "3", errstr, sizeof(errstr));
        if (getenv("MOCK_BROKER_DEBUG")) { /* e.g. "mock": the cluster's own trace, on stderr */
                rd_kafka_conf_set(conf, "log_level", "7", errstr, sizeof(errstr));
                rd_kafka_conf_set(conf, "debug", getenv("MOCK_BROKER_DEBUG"), errstr, sizeof(errstr));
        }
        rd_kafka_t *rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, errstr, sizeof(errstr));
        if (!rk) { fprintf(stderr, "rd_kafka_new: %s\n", errstr); return 1; }

        rd_kafka_mock_cluster_t *mc = rd_kafka_mock_cluster_new(rk, broker_cnt);
        if (!mc) { fprintf(stderr, "rd_kafka_mock_cluster_new failed\n"); rd_kafka_destroy(rk); return 1; }

        for (int i = 2; i < argc; i++) {
                char buf[512]; snprintf(buf, sizeof(buf), "%s", argv[i]);
                char *c1 = strchr(buf, ':'); int p = 1, rf = 1;
                if (c1) { *c1 = 0; p = atoi(c1 + 1); char *c2 = strchr(c1 + 1, ':'); if (c2) rf = atoi(c2 + 1); }
                create_topic(mc, buf, p, rf, 0);
        }

        printf("%s\n", rd_kafka_mock_cluster_bootstraps(mc));
        fflush(stdout);

        char line[1024]; size_t len = 0;
        while (!stop) {
                struct pollfd pfd = { .fd = 0, .events = POLLIN };
                int r = poll(&pfd, 1, 500);
                if (r < 0) { if (errno == EINTR) continue; break; }
                if (r == 0) continue;
                ssize_t n = read(0, line + len, sizeof(line) - 1 - len);
                if (n <= 0) break;                 /* EOF (or error): parent went away */
                len += (size_t)n; line[len] = 0;
                char *nl;
                while ((nl = strchr(line, '\n'))) {
                        *nl = 0;
                        char t[512]; int p = 1, rf = 1;
                        if (sscanf(line, "create %511s %d %d", t, &p, &rf) >= 2) create_topic(mc, t, p, rf, 1);
                        else if (line[0]) { printf("err -1 unknown command\n"); fflush(stdout); }
                        size_t rest = len - (size_t)(nl + 1 - line);
                        memmove(line, nl + 1, rest); len = rest; line[len] = 0;
                }
                if (len >= sizeof(line) - 1) len = 0; /* overlong line: drop */
        }

        rd_kafka_mock_cluster_destroy(mc);
        rd_kafka_destroy(rk);
        return 0;
}
