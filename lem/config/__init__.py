"""Configuration: schema dataclasses, ConfigStore registration, validation rules and introspection."""
