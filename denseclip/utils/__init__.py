"""Helpers of the command-line tools: configuration checks."""
from .config_checks import (DATA_PREPARATION, check_config, check_config_file,
                            check_config_keys, check_data, check_dataset_configs,
                            check_model_config, check_vocabulary, scope_registries)

__all__ = ['DATA_PREPARATION', 'check_config', 'check_config_file', 'check_config_keys',
           'check_data', 'check_dataset_configs', 'check_model_config', 'check_vocabulary',
           'scope_registries']
