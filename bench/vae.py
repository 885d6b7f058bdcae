"""One training step of the digits VAE (nf.models.VAE 64-128-(8)-128-64:
encoder, reparameterization, decoder, BCE + KL loss, backward, Adam update)
at batch 128 on digits-sized inputs (64 pixels in [0, 1]), nnforge against
the same VAE in PyTorch CPU with copied weights and the same noise eps."""
from __future__ import annotations

import numpy as np

from .harness import Case

BATCH, HIDDEN, LATENT = 128, 128, 8


def cases(threads: int):
    import nnforge as nf
    from nnforge.models import VAE, vae_loss
    rng = np.random.default_rng(0)
    x_np = rng.uniform(0, 1, size=(BATCH, 64)).astype(np.float32)
    eps_np = rng.standard_normal((BATCH, LATENT)).astype(np.float32)

    nf.manual_seed(0)
    model = VAE(64, [HIDDEN], LATENT)
    opt = nf.optim.Adam(model.parameters(), lr=1e-3)
    x, eps = nf.from_numpy(x_np), nf.from_numpy(eps_np)

    def ours():
        opt.zero_grad()
        mu, logvar = model.encode(x)
        logits = model.decode(mu + (logvar * 0.5).exp() * eps)  # z = mu + sigma * eps
        loss, _, _ = vae_loss(logits, x, mu, logvar)
        loss.backward()
        opt.step()
        return loss.item()

    peer = None
    try:
        import torch
        torch.set_num_threads(threads)
        tm = torch.nn.ModuleDict({
            "encoder": torch.nn.Sequential(torch.nn.Linear(64, HIDDEN), torch.nn.ReLU()),
            "fc_mu": torch.nn.Linear(HIDDEN, LATENT),
            "fc_logvar": torch.nn.Linear(HIDDEN, LATENT),
            "decoder": torch.nn.Sequential(torch.nn.Linear(LATENT, HIDDEN), torch.nn.ReLU(),
                                           torch.nn.Linear(HIDDEN, 64))})
        tm.load_state_dict({k: torch.from_numpy(v.numpy().copy())
                            for k, v in model.state_dict().items()})
        topt = torch.optim.Adam(tm.parameters(), lr=1e-3)
        tx, teps = torch.from_numpy(x_np), torch.from_numpy(eps_np)
        bce = torch.nn.functional.binary_cross_entropy_with_logits

        def peer():
            topt.zero_grad()
            h = tm["encoder"](tx)
            mu, logvar = tm["fc_mu"](h), tm["fc_logvar"](h)
            logits = tm["decoder"](mu + torch.exp(0.5 * logvar) * teps)
            recon = bce(logits, tx, reduction="sum") / BATCH
            kl = -0.5 * torch.sum(1 + logvar - mu.pow(2) - logvar.exp()) / BATCH
            loss = recon + kl
            loss.backward()
            topt.step()
            return loss.item()
    except ImportError:
        pass
    extra = {}
    if peer is not None:
        # The same computation: the first steps' losses agree (checked, then recorded).
        ours_losses = [ours() for _ in range(3)]
        peer_losses = [peer() for _ in range(3)]
        if not np.allclose(ours_losses, peer_losses, rtol=1e-4):
            raise AssertionError(f"bench vae: losses differ from PyTorch's: {ours_losses} vs "
                                 f"{peer_losses}")
        extra = {"first_losses": ours_losses, "peer_first_losses": peer_losses}
    return [Case(f"vae 64-{HIDDEN}-({LATENT})-{HIDDEN}-64 train step, batch {BATCH}", ours, peer,
                 note="encode, reparameterize, decode, BCE + KL, backward, Adam step",
                 extra=extra)]
