"""A tiny callback registry: registered functions become attributes."""


class Registry:
    def register(self, fn):
        setattr(self, fn.__name__, fn)
        return fn
