"""Which columns of the design depend, or nearly, on others: the rank and the columns of a Gram matrix's
(near) null space, from its eigendecomposition (linreg.closed_form names them in one line).

    rank, collinear = null_space(eigenvalues, Q)    # eigenvalues ascending, Q their eigenvectors
    collinearity_line(solution, names)              # the line a run prints: a linreg.closed_form.ClosedForm's
"""

import torch

# Eigenvalues of Z̃ᵀZ̃/n below NEAR_COLLINEAR of the largest (a condition number of Z̃ above 10⁶) name their
# columns: their coefficients move by 10⁶ times any change in the data's last digits. Below SINGULAR (Z̃'s
# above 10¹³) the columns are collinear to float64's resolution, and the solution is not unique.
NEAR_COLLINEAR = 1e-12
SINGULAR = 1e-26


def null_space(eigenvalues: torch.Tensor, Q: torch.Tensor) -> tuple[int, tuple[int, ...]]:
    """(rank, the columns involved in the null space) of a Gram matrix from its eigendecomposition, k = len.

    A column is involved when the null space holds a real share of it: the norm of its row of the null
    space's basis V, ‖Vᵀe_j‖ (between 0 and 1, whatever basis eigh chose), is at least 1 % of the largest.
    A column outside the dependence has a share of rounding's size; one inside, however many columns the
    dependence spreads over (all 1001 of 1000 rows' [X, 1]), a share of the same order as the others'."""
    top = eigenvalues[-1].clamp(min=0)
    small = eigenvalues <= NEAR_COLLINEAR * top
    rank = len(eigenvalues) - int((eigenvalues <= SINGULAR * top).sum())
    if not bool(small.any()):
        return rank, ()
    share = Q[:, small].norm(dim=1)  # (k,): each column's part in the null space
    return rank, tuple(int(j) for j in (share >= 0.01 * share.max()).nonzero().reshape(-1))


def collinearity_line(solution, names: list[str]) -> str | None:
    """One line naming the columns that depend, or nearly, on others, or None where none does."""
    if not solution.collinear:
        return None
    named = [names[j] for j in solution.collinear]
    columns = ", ".join(named) if len(named) <= 6 else f"{', '.join(named[:5])}, ... ({len(named)} columns)"
    k = len(solution.eigenvalues)
    if solution.rank < k:
        return (
            f"collinear: {columns} are linearly dependent, to float64's resolution (rank {solution.rank} of {k}): "
            "the closed form is the minimum-norm least-squares solution, one of many, and its parameters are no "
            "target for SGD's"
        )
    return (
        f"nearly collinear: {columns} (XᵀX/n has condition number {solution.condition_number:.3g}): the closed "
        f"form is solved exactly (~{solution.digits:.0f} correct digits), but its parameters move "
        f"~{solution.condition_number**0.5:.0e} times as much as the data's last digits"
    )
