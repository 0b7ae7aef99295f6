"""A DRF Serializer that neither copies nor binds fields per instance where it need not, for the checkout's hot path.

DRF gives every serializer instance its own fields by deep-copying the declared ones, and a field's deep copy calls
its constructor again (validators, error messages, choices); binding them then walks each one. For
`POST /api/v1/conversions` that was ~1 ms of the ~4 ms of Python an order cost (its input, the nested customer, the
answer with its nested referral and rewards): measured in docs/benchmarks.md. Two savings here:

- Fields: each class deep-copies its declared fields once (the prototype) and every instance gets shallow copies of
  them, which `bind()` then gives their name and parent as usual. A shallow copy shares what the field's
  constructor built (its validators list, error messages, choices), which nothing changes after construction. What
  holds a field of its own (a nested serializer, a ListSerializer's child, a ListField/DictField) is deep-copied as
  DRF does: a shared child would stay bound to the prototype's parent and lose the serializer's context.
- Validation: valid input is validated by one instance of the class made once (its fields bound once), field by
  field exactly as DRF's `Serializer.to_internal_value` does, with the serializer's own `validate_<field>` methods;
  the instance's own fields are never built. Any error, and every case where a field could read the serializer's
  context or a partial update (a HiddenField, a related field, a default that needs the context), runs DRF's own
  path with the instance's own fields: errors are DRF's, word for word (tests/test_fast_serializer.py).
"""

from __future__ import annotations

import copy
from collections.abc import Mapping

from django.core.exceptions import ValidationError as DjangoValidationError
from rest_framework import relations, serializers
from rest_framework.fields import SkipField

_UNSHARED = object()  # a class whose validation must not use a shared instance's fields


def _copy(field):
    if isinstance(field, serializers.BaseSerializer) or hasattr(field, "child"):
        return copy.deepcopy(field)
    # copy.copy's result, without its detour through __reduce_ex__ and copyreg (a third of the copy's time): DRF's
    # fields keep their state in __dict__ and define no __copy__, __slots__ or __setstate__.
    clone = object.__new__(type(field))
    clone.__dict__.update(field.__dict__)
    return clone


def _context_free(field) -> bool:
    """Whether validating with `field` never reads the serializer's context, instance or request."""
    if isinstance(field, serializers.HiddenField | relations.RelatedField | relations.ManyRelatedField):
        return False
    if getattr(field.default, "requires_context", False):
        return False
    if isinstance(field, serializers.BaseSerializer):
        return _shared_validator(type(getattr(field, "child", field))) is not None
    child = getattr(field, "child", None)
    return child is None or _context_free(child)


def _shared_validator(cls):
    """The class's one validating instance (its fields bound once), or None where validation needs each
    instance's own fields. Made on first use; two threads may both make it: harmless."""
    shared = cls.__dict__.get("_validating_instance")
    if shared is None:
        shared = _UNSHARED
        if issubclass(cls, FastSerializer):
            candidate = cls()
            if all(_context_free(field) for field in candidate.fields.values()):
                shared = candidate
        cls._validating_instance = shared
    return None if shared is _UNSHARED else shared


class FastSerializer(serializers.Serializer):
    def get_fields(self):
        prototype = type(self).__dict__.get("_prototype_fields")
        if prototype is None:  # once per class (a subclass has its own); two threads may both build it: harmless
            prototype = super().get_fields()
            type(self)._prototype_fields = prototype
        return {name: _copy(field) for name, field in prototype.items()}

    def _shared(self):
        """The class's validating instance, unless this one must use fields of its own: a partial update, or it
        has built its fields already (the validating instance itself is one of those)."""
        return None if self.partial or "fields" in self.__dict__ else _shared_validator(type(self))

    def to_internal_value(self, data):
        """DRF's, on the shared validating instance's fields for input without errors (see the module's doc)."""
        shared = self._shared()
        if shared is None or not isinstance(data, Mapping):
            return super().to_internal_value(data)
        values = {}
        for field in shared._writable_fields:
            validate_method = getattr(self, "validate_" + field.field_name, None)
            try:
                value = field.run_validation(field.get_value(data))
                if validate_method is not None:
                    value = validate_method(value)
            except SkipField:
                continue
            except (serializers.ValidationError, DjangoValidationError):
                return super().to_internal_value(data)  # DRF's own error report, from this instance's fields
            self.set_value(values, field.source_attrs, value)
        return values

    def _read_only_defaults(self):
        shared = self._shared()
        if shared is None:
            return super()._read_only_defaults()
        return shared._read_only_defaults()
