from erp_app.lifecycle import Lifecycle


class FakeClock:
    def __init__(self):
        self.now = 100.0

    def __call__(self):
        return self.now


def test_uptime_ready_and_drain():
    clock = FakeClock()
    life = Lifecycle(clock)
    clock.now += 5
    assert life.uptime() == 5
    assert life.ready_for() is None
    life.mark_ready()
    clock.now += 3
    life.mark_ready()  # the first moment counts
    assert life.ready_for() == 3
    assert not life.draining
    life.begin_drain()
    assert life.draining
