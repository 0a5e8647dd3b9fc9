# numba compiles these from the arrays they receive; signatures stay untyped.
# numba's code generation helpers (cgutils) carry no annotations either.
# mypy: disable-error-code="no-untyped-def,no-untyped-call"
"""A stretch of an int64 vector seen as a table, without numba's ``reshape``.

The kernels carve their scratch (a basket's merged lines, the sharing runs) and the rule
block's tables out of flat int64 vectors. numba's ``reshape`` is general: it normalises the
new shape (a -1 may stand for one dimension), then calls a C helper that works out strides
for any layout: ~100 instructions a call, three calls a basket in the batch kernel, five a
request in ``price_one``'s rule block. A vector the kernels carve is always C-contiguous and
long enough, so the view is just its data pointer with the new shape and strides.
"""

from __future__ import annotations

import numba
from numba.core import types
from numba.core.imputils import impl_ret_borrowed
from numba.extending import intrinsic
from numba.np.arrayobj import populate_array

from engine.pricing.jit import inline_helper


@intrinsic
def _rows_view(typingctx, vec, start, rows, cols):
    """``vec[start:]`` (``vec`` 1-d, C-contiguous) seen as ``rows`` by ``cols``, C order;
    shares its data and owner. Checks nothing (the caller does)."""
    if not (isinstance(vec, types.Array) and vec.ndim == 1 and vec.layout == "C"):
        return None
    table = vec.copy(ndim=2, layout="C")  # numba's reshape types its view the same way

    def codegen(context, builder, signature, args):
        src = context.make_array(signature.args[0])(context, builder, args[0])
        out = context.make_array(table)(context, builder)
        at, r, c = (
            context.cast(builder, v, t, types.intp)
            for v, t in zip(args[1:], signature.args[1:], strict=True)
        )
        item = context.get_constant(types.intp, context.get_abi_sizeof(src.data.type.pointee))
        populate_array(
            out,
            data=builder.gep(src.data, [at]),
            shape=[r, c],
            strides=[builder.mul(c, item), item],
            itemsize=item,
            meminfo=src.meminfo,
            parent=src.parent,
        )
        return impl_ret_borrowed(context, builder, table, out._getvalue())

    return table(vec, start, rows, cols), codegen


# an intrinsic: compiled code only (without the JIT, numpy's reshape does the same)
VIEW_INTRINSIC = not numba.config.DISABLE_JIT  # type: ignore[attr-defined]


@inline_helper
def as_table(vec, start, rows, cols):
    """``vec[start : start + rows * cols]`` as a ``rows`` by ``cols`` table (a view, C order);
    ``vec`` must be C-contiguous. Raises IndexError where the table would reach past ``vec``'s
    end."""
    if start < 0 or rows < 0 or cols < 0 or start + rows * cols > vec.shape[0]:
        raise IndexError("as_table: the table reaches past the vector")
    if VIEW_INTRINSIC:
        return _rows_view(vec, start, rows, cols)  # type: ignore[call-arg]
    return vec[start : start + rows * cols].reshape((rows, cols))
