"""Bijective flow steps and the multi-scale flow (direction: analysis = image -> latent)."""

from tfflowcomp.flow.actnorm import ActNorm
from tfflowcomp.flow.coupling import AdditiveCoupling, AffineCoupling, AffineCouplingStep
from tfflowcomp.flow.invertible_conv import InvertibleConv1x1
from tfflowcomp.flow.lifting import LiftingStep, wavelet_lifting_steps
from tfflowcomp.flow.multiscale import FlowLevel, MultiscaleFlow
from tfflowcomp.flow.squeeze import Squeeze
