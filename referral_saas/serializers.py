"""A DRF Serializer whose fields are copied from a prototype instead of deep-copied, for the checkout's hot path.

DRF gives every serializer instance its own fields by deep-copying the declared ones, and a field's deep copy calls
its constructor again (validators, error messages, choices). For `POST /api/v1/conversions` that was ~1 ms of the
~4 ms of Python an order costs (its input, the nested customer, the answer with its nested referral and rewards):
measured in docs/benchmarks.md. Here each class deep-copies its declared fields once (the prototype) and every
instance gets shallow copies of them, which `bind()` then gives their name and parent as usual.

A shallow copy shares what the field's constructor built (its validators list, error messages, choices), which
nothing changes after construction. What holds a field of its own (a nested serializer, a ListSerializer's child,
a ListField/DictField) is deep-copied as DRF does: a shared child would stay bound to the prototype's parent and
lose the serializer's context.
"""

from __future__ import annotations

import copy

from rest_framework import serializers


def _copy(field):
    if isinstance(field, serializers.BaseSerializer) or hasattr(field, "child"):
        return copy.deepcopy(field)
    # copy.copy's result, without its detour through __reduce_ex__ and copyreg (a third of the copy's time): DRF's
    # fields keep their state in __dict__ and define no __copy__, __slots__ or __setstate__.
    clone = object.__new__(type(field))
    clone.__dict__.update(field.__dict__)
    return clone


class FastSerializer(serializers.Serializer):
    def get_fields(self):
        prototype = type(self).__dict__.get("_prototype_fields")
        if prototype is None:  # once per class (a subclass has its own); two threads may both build it: harmless
            prototype = super().get_fields()
            type(self)._prototype_fields = prototype
        return {name: _copy(field) for name, field in prototype.items()}
