"""hinas_lib: HiNAS (Zhang et al., CVPR 2020) for image denoising and super-resolution."""
from .config import Config, ConfigError, get_preset, load_config
from .genotype import Genotype, GenotypeError
from .supernet import SuperNet
from .network import HiNASNet
from .derive import derive_genotype

__version__ = "0.1.0"

__all__ = ["Config", "ConfigError", "get_preset", "load_config", "Genotype", "GenotypeError",
           "SuperNet", "HiNASNet", "derive_genotype", "__version__"]
