"""Order processing: reserve inventory and charge the payment in parallel, then ship.

A payment that fails releases the reservation (a compensation, the saga pattern) and fails the
workflow with the payment's reason.
"""
