"""marshmallow schemas: load (validate input) and dump (shape output), one module per resource."""
