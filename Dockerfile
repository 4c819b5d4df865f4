# Container image of the cloud-controller-manager, from a binary built with `make build`
# (static: CGO is not needed). Example: make build && docker build -t registry.example/baremetal-ccm:dev .
FROM gcr.io/distroless/static-debian12:nonroot
COPY bin/baremetal-cloud-controller-manager /usr/local/bin/baremetal-cloud-controller-manager
USER 65532:65532
ENTRYPOINT ["/usr/local/bin/baremetal-cloud-controller-manager"]
