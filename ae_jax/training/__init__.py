"""Training: objective and losses, optimizers, the compiled engine, chunked epochs, the
group-run loop, device placement and hosts, checkpoints, metric writers, stop signals."""
