/*
 * kpki-micro: the small loops behind figures in docs/benchmarks.md that no server run can give
 * (bench/README.md, "kpki-micro"). Each prints CPU time per operation; run each twice and read
 * the ratios, as everywhere on this shared machine.
 *
 *   kpki-micro d2i CERT.pem [THREADS]  d2i_X509 (+ X509_get0_pubkey) of one certificate's DER in
 *                                      OpenSSL's default library context and in the servers'
 *                                      (kp_tls_libctx), each holding a TLS server context as a
 *                                      server's does, in THREADS threads at once (default 1);
 *                                      CPU per decode per thread
 *   kpki-micro json FILE               json_loadb + json_decref of FILE (a JWT's decoded claims),
 *                                      with and without JSON_REJECT_DUPLICATES
 *   kpki-micro digest                  SHA-256 of 900 bytes with EVP_sha256() (fetched by OpenSSL
 *                                      3.0 on every call) and with a digest fetched once
 *
 * Exit codes: 0 measured, 2 bad arguments or an input that cannot be read.
 */
#include <jansson.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "net/http.h" /* kp_tls_libctx */

static double cpu_seconds(clockid_t clock)
{
    struct timespec t;
    clock_gettime(clock, &t);
    return (double)t.tv_sec + (double)t.tv_nsec * 1e-9;
}

struct d2i_job {
    const unsigned char *der;
    long der_len;
    OSSL_LIB_CTX *libctx;
    int rounds;
    double us_per_op; /* out */
    int failed;       /* out */
};

static void *d2i_loop(void *arg)
{
    struct d2i_job *job = arg;
    double start = cpu_seconds(CLOCK_THREAD_CPUTIME_ID);
    for (int i = 0; i < job->rounds; i++) {
        const unsigned char *p = job->der;
        X509 *cert = X509_new_ex(job->libctx, NULL);
        if (cert == NULL || d2i_X509(&cert, &p, job->der_len) == NULL ||
            X509_get0_pubkey(cert) == NULL) {
            job->failed = 1;
        }
        X509_free(cert);
    }
    job->us_per_op = (cpu_seconds(CLOCK_THREAD_CPUTIME_ID) - start) / job->rounds * 1e6;
    return NULL;
}

static int run_d2i(const char *path, int threads)
{
    FILE *file = fopen(path, "r");
    X509 *cert = file != NULL ? PEM_read_X509(file, NULL, NULL, NULL) : NULL;
    if (file != NULL) {
        fclose(file);
    }
    unsigned char *der = NULL;
    int der_len = cert != NULL ? i2d_X509(cert, &der) : -1;
    X509_free(cert);
    if (der_len <= 0 || threads < 1 || threads > 64) {
        fprintf(stderr,
                "kpki-micro d2i: cannot read a PEM certificate from '%s' (or THREADS "
                "is not 1-64)\n",
                path);
        return 2;
    }
    OSSL_LIB_CTX *contexts[2] = {NULL, kp_tls_libctx()};
    const char *names[2] = {"default context", "servers' context (kp_tls_libctx)"};
    int status = 0;
    for (int c = 0; c < 2; c++) {
        /* Made first, as in a server: making it fetches libssl's ciphers and digests, and
         * OpenSSL 3.0 then copies all of them whenever it decodes a key (tls_libctx.c). */
        SSL_CTX *server = SSL_CTX_new_ex(contexts[c], NULL, TLS_server_method());
        if (server == NULL) {
            fprintf(stderr, "kpki-micro d2i: cannot make a TLS server context\n");
            OPENSSL_free(der);
            return 2;
        }
        struct d2i_job jobs[64];
        pthread_t ids[64];
        for (int t = 0; t < threads; t++) {
            jobs[t] = (struct d2i_job){der, der_len, contexts[c], 20000, 0, 0};
            pthread_create(&ids[t], NULL, d2i_loop, &jobs[t]);
        }
        printf("d2i_X509, %s, %d thread%s:", names[c], threads, threads == 1 ? "" : "s");
        for (int t = 0; t < threads; t++) {
            pthread_join(ids[t], NULL);
            printf(" %.1f", jobs[t].us_per_op);
            status |= jobs[t].failed ? 2 : 0;
        }
        printf(" us CPU per decode\n");
        SSL_CTX_free(server);
    }
    OPENSSL_free(der);
    return status;
}

static int run_json(const char *path)
{
    FILE *file = fopen(path, "rb");
    char text[65536];
    size_t len = file != NULL ? fread(text, 1, sizeof(text), file) : 0;
    if (file != NULL) {
        fclose(file);
    }
    json_t *probe = len > 0 ? json_loadb(text, len, 0, NULL) : NULL;
    if (probe == NULL) {
        fprintf(stderr, "kpki-micro json: '%s' is not a readable JSON document\n", path);
        return 2;
    }
    json_decref(probe);
    const size_t flags[2] = {0, JSON_REJECT_DUPLICATES};
    for (int f = 0; f < 2; f++) {
        const int rounds = 200000;
        double start = cpu_seconds(CLOCK_PROCESS_CPUTIME_ID);
        for (int i = 0; i < rounds; i++) {
            json_decref(json_loadb(text, len, flags[f], NULL));
        }
        printf("json_loadb of %zu bytes%s: %.2f us CPU\n", len,
               flags[f] ? ", JSON_REJECT_DUPLICATES" : "",
               (cpu_seconds(CLOCK_PROCESS_CPUTIME_ID) - start) / rounds * 1e6);
    }
    return 0;
}

static int run_digest(void)
{
    unsigned char input[900] = {1};
    unsigned char out[EVP_MAX_MD_SIZE];
    unsigned int out_len = 0;
    EVP_MD *fetched = EVP_MD_fetch(NULL, "SHA256", NULL);
    const EVP_MD *mds[2] = {EVP_sha256(), fetched};
    const char *names[2] = {"EVP_sha256()", "fetched once"};
    for (int m = 0; m < 2; m++) {
        const int rounds = 500000;
        double start = cpu_seconds(CLOCK_PROCESS_CPUTIME_ID);
        for (int i = 0; i < rounds; i++) {
            EVP_Digest(input, sizeof(input), out, &out_len, mds[m], NULL);
        }
        printf("SHA-256 of 900 bytes, %s: %.2f us CPU\n", names[m],
               (cpu_seconds(CLOCK_PROCESS_CPUTIME_ID) - start) / rounds * 1e6);
    }
    EVP_MD_free(fetched);
    return 0;
}

int main(int argc, char **argv)
{
    if (argc >= 3 && argc <= 4 && strcmp(argv[1], "d2i") == 0) {
        return run_d2i(argv[2], argc == 4 ? atoi(argv[3]) : 1);
    }
    if (argc == 3 && strcmp(argv[1], "json") == 0) {
        return run_json(argv[2]);
    }
    if (argc == 2 && strcmp(argv[1], "digest") == 0) {
        return run_digest();
    }
    fprintf(stderr, "usage: kpki-micro d2i CERT.pem [THREADS] | json FILE | digest\n");
    return 2;
}
