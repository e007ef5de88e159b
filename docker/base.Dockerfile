# A stand-in for the official python:3.11-slim-bookworm image, for a machine that reaches no image registry:
# a Debian bookworm root made by debootstrap and imported (scripts/docker-test.sh), plus Debian's Python
# where the image expects it.
ARG ROOT=nestml-registry-debian:bookworm
FROM ${ROOT}
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
        python3 python3-venv python3-pip python3-dev ca-certificates \
 && rm -rf /var/lib/apt/lists/* \
 && ln -sf /usr/bin/python3 /usr/local/bin/python && ln -sf /usr/bin/pip3 /usr/local/bin/pip \
 && rm -f /usr/lib/python3*/EXTERNALLY-MANAGED
