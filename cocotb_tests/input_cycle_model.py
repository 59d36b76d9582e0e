"""The documented handshake timing of ``abfp_input_unit`` (docs/rtl_input_unit.md) as a model."""

from __future__ import annotations


class InputUnitCycleModel:
    """The unit's documented timing: which cycles in_ready_o and out_valid_o are high.

    The quantizer takes one buffered beat per clock for ``beats`` clocks after the clock that
    closed a vector, starting only when the output register is free or being emptied; input
    beat b may be taken once the quantizer has read buffer slot b or reads it in that clock.
    The output is valid from the clock after the quantizer's last beat.
    """

    def __init__(self, beats: int):
        self.beats = beats
        self.reset()

    def reset(self) -> None:
        self.in_beat = 0
        self.q_active = False
        self.q_beat = 0
        self.out_valid = False
        self.nonfinite = False

    @property
    def closing(self) -> bool:
        """Whether the next beat taken closes a vector."""
        return self.in_beat == self.beats - 1

    def step(
        self, in_valid: bool, out_ready: bool, beat_nonfinite: bool
    ) -> tuple[bool, bool, bool]:
        """Advance one clock; returns this clock's (in_ready, out_valid, nonfinite)."""
        shown_valid, shown_nonfinite = self.out_valid, self.nonfinite
        last = self.beats - 1
        q_advance = self.q_active and (self.q_beat != 0 or not self.out_valid or out_ready)
        in_ready = (not self.q_active) or self.q_beat > self.in_beat or (
            self.q_beat == self.in_beat and q_advance
        )
        fire = in_valid and in_ready
        out_valid = self.out_valid and not out_ready
        if q_advance:
            if self.q_beat == last:
                self.q_active, self.q_beat, out_valid = False, 0, True
            else:
                self.q_beat += 1
        if fire:
            self.nonfinite = self.nonfinite or beat_nonfinite
            if self.in_beat == last:
                self.in_beat, self.q_active, self.q_beat = 0, True, 0
            else:
                self.in_beat += 1
        self.out_valid = out_valid
        return in_ready, shown_valid, shown_nonfinite
