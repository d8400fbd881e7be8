"""Driver for bench_peer.py, run with the peer's Python (torch): one training iteration of
rosinality/style-based-gan-pytorch per line read from stdin, its seconds written to stdout.

    <torch python> benchmarks/peer_torch_step.py PEER_PATH RESOLUTION BATCH

The iteration is the peer's train.py with --loss=r1 --mixing, fully faded in (alpha=1): D on the
reals with R1 (autograd.grad with create_graph, gamma 10), D on G's fakes, the D Adam step, then
G (style mixing with probability 0.9) through D, the G Adam step and the generator average.
model.py is imported from PEER_PATH at run time (train.py needs torchvision and a dataset).
"""
import copy
import importlib.util
import math
import os
import random
import sys
import time

import torch
import torch.nn.functional as F


def main(peer_path: str, resolution: int, batch: int) -> None:
    spec = importlib.util.spec_from_file_location("peer_model", os.path.join(peer_path, "model.py"))
    model = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(model)
    torch.manual_seed(0)
    random.seed(0)
    step, alpha, code = int(math.log2(resolution)) - 2, 1.0, 512
    G, D = model.StyledGenerator(code), model.Discriminator(from_rgb_activate=True)
    g_running = copy.deepcopy(G).train(False)
    g_opt = torch.optim.Adam(G.generator.parameters(), lr=1e-3, betas=(0.0, 0.99))
    g_opt.add_param_group({"params": G.style.parameters(), "lr": 1e-5, "mult": 0.01})
    d_opt = torch.optim.Adam(D.parameters(), lr=1e-3, betas=(0.0, 0.99))
    reals = torch.rand(batch, 3, resolution, resolution) * 2 - 1

    def requires_grad(net, flag):
        for p in net.parameters():
            p.requires_grad = flag

    def latents():
        if random.random() < 0.9:
            return list(torch.randn(2, batch, code))
        return torch.randn(batch, code)

    def iteration():
        requires_grad(G, False)
        requires_grad(D, True)
        D.zero_grad()
        real = reals.clone().requires_grad_(True)
        scores = D(real, step=step, alpha=alpha)
        F.softplus(-scores).mean().backward(retain_graph=True)
        grad_real, = torch.autograd.grad(scores.sum(), real, create_graph=True)
        (10 / 2 * (grad_real.view(batch, -1).norm(2, dim=1) ** 2).mean()).backward()
        fake = G(latents(), step=step, alpha=alpha)
        F.softplus(D(fake, step=step, alpha=alpha)).mean().backward()
        d_opt.step()
        G.zero_grad()
        requires_grad(G, True)
        requires_grad(D, False)
        F.softplus(-D(G(latents(), step=step, alpha=alpha), step=step, alpha=alpha)).mean().backward()
        g_opt.step()
        with torch.no_grad():
            for p_avg, p in zip(g_running.parameters(), G.parameters()):
                p_avg.mul_(0.999).add_(p, alpha=0.001)

    print(f"ready torch {torch.__version__} threads {torch.get_num_threads()}", flush=True)
    for _ in sys.stdin:
        start, cpu = time.perf_counter(), time.process_time()
        iteration()
        print(f"{time.perf_counter() - start:.6f} {time.process_time() - cpu:.6f}", flush=True)


if __name__ == "__main__":
    main(sys.argv[1], int(sys.argv[2]), int(sys.argv[3]))
