"""The GAN workloads of bench/peers.py in PyTorch: one step pair (the
discriminator's step, then the generator's) of examples/gan_ring.nn and one
round of examples/wgan_gp_ring.nn (its critic step with the gradient penalty,
whose double backward needs create_graph=True, then the generator's step).
The networks, noise sizes, losses and optimizers are the files' own."""
import re

from peers import REPO


def ring_settings(name):
    """Batch, noise width, hidden width, penalty weight and Adam settings of examples/<name>.nn."""
    text = (REPO / "examples" / f"{name}.nn").read_text()
    num = r"([0-9.eE+-]+)"
    batch = int(re.search(r"\bbatch\((\d+)\)", text).group(1))
    noise = int(re.search(r"normal\(\[N, (\d+)\]\)", text).group(1))
    width = int(re.search(r"dense\(z, (\d+)\)", text).group(1))
    penalty = float(re.search(num + r" \* (?:r1|gp)\b", text).group(1))
    lr = float(re.search(r"adam\(lr = " + num, text).group(1))
    beta1 = float(re.search(r"beta1 = " + num, text).group(1))
    beta2 = re.search(r"beta2 = " + num, text)
    return batch, noise, width, penalty, (lr, (beta1, float(beta2.group(1)) if beta2 else 0.999))


def gan_cases(compiled):
    """(workload, batch, make) for torch eager (compiled=False) or torch.compile."""
    import torch
    from torch import nn
    import torch.nn.functional as F

    def nets(noise, width):
        g = nn.Sequential(nn.Linear(noise, width), nn.ReLU(), nn.Linear(width, width), nn.ReLU(),
                          nn.Linear(width, 2))
        d = nn.Sequential(nn.Linear(2, width), nn.LeakyReLU(0.2), nn.Linear(width, width), nn.LeakyReLU(0.2),
                          nn.Linear(width, 1))
        return g, d

    def ring(batch):
        g = torch.Generator().manual_seed(batch)
        k = torch.randint(0, 8, (batch,), generator=g).double() * (2 * torch.pi / 8)
        return (torch.stack([2 * torch.cos(k), 2 * torch.sin(k)], 1) + 0.02 * torch.randn(batch, 2, generator=g)).float()

    def setup(batch, noise, width, lr, betas):
        """The two networks, an Adam for each, and a batch of ring points."""
        if compiled:
            torch._dynamo.reset()
        G, D = nets(noise, width)
        og, od = torch.optim.Adam(G.parameters(), lr, betas=betas), torch.optim.Adam(D.parameters(), lr, betas=betas)
        return G, D, og, od, ring(batch)

    def gan_ring():
        batch, noise, width, gamma, (lr, betas) = ring_settings("gan_ring")

        def make():
            G, D, og, od, x = setup(batch, noise, width, lr, betas)

            def d_loss(x, z):
                x = x.requires_grad_(True)
                real = D(x)
                fake = D(G(z).detach())
                r1 = torch.autograd.grad(real.sum(), x, create_graph=True)[0].pow(2).sum(1).mean()
                return (F.binary_cross_entropy_with_logits(real, torch.ones_like(real)) +
                        F.binary_cross_entropy_with_logits(fake, torch.zeros_like(fake)) + gamma * r1)

            def g_loss(z):
                fake = D(G(z))
                return F.binary_cross_entropy_with_logits(fake, torch.ones_like(fake))
            if compiled:
                d_loss, g_loss = torch.compile(d_loss, dynamic=False), torch.compile(g_loss, dynamic=False)

            def step():
                od.zero_grad(set_to_none=True)
                d_loss(x.clone(), torch.randn(batch, noise)).backward()
                od.step()
                og.zero_grad(set_to_none=True)
                g_loss(torch.randn(batch, noise)).backward()
                og.step()
            return step, {"what": "D step (R1 penalty) then G step"}
        return batch, make

    def wgan_gp_ring():
        batch, noise, width, lam, (lr, betas) = ring_settings("wgan_gp_ring")

        def make():
            G, D, og, od, x = setup(batch, noise, width, lr, betas)

            def critic_loss(x, z, eps):
                fake = G(z).detach()
                x_hat = (eps * x + (1 - eps) * fake).requires_grad_(True)
                grad = torch.autograd.grad(D(x_hat).sum(), x_hat, create_graph=True)[0]
                gp = ((grad.norm(dim=1) - 1) ** 2).mean()
                return D(fake).mean() - D(x).mean() + lam * gp

            def gen_loss(z):
                return -D(G(z)).mean()
            if compiled:
                critic_loss, gen_loss = torch.compile(critic_loss, dynamic=False), torch.compile(gen_loss, dynamic=False)

            def step():
                od.zero_grad(set_to_none=True)
                critic_loss(x, torch.randn(batch, noise), torch.rand(batch, 1)).backward()
                od.step()
                og.zero_grad(set_to_none=True)
                gen_loss(torch.randn(batch, noise)).backward()
                og.step()
            return step, {"what": "critic step (gradient penalty) then generator step"}
        return batch, make

    cases = []
    for wl, fn in (("gan-ring", gan_ring), ("wgan-gp-ring", wgan_gp_ring)):
        batch, make = fn()
        cases.append((wl, batch, make))
    return cases
