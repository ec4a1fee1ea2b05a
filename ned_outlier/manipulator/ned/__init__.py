"""NED's learned manipulator: a sequence-to-sequence GAN over per-frame expression codes (StarGAN v2 style: a
generator, a mapping network and a style encoder per emotion, a multi-task discriminator), trained with per-sample
CLIP outlier weights."""
