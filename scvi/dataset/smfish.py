"""osmFISH mouse somatosensory cortex (Codeluppi et al., 2018), Linnarsson lab."""

import logging

import numpy as np

from ._loader_utils import checked_names, data_file, unreadable
from .dataset import DownloadableDataset

logger = logging.getLogger(__name__)

__all__ = ["SmfishDataset"]

# Clusters of the original annotation merged into the major cell types.
_MAJOR_CLUSTERS = {
    (3, 2): "Astrocytes",
    (7, 26): "Endothelials",
    (18, 17, 14, 19, 15, 16, 20): "Inhibitory",
    (29, 28): "Microglias",
    (32, 33, 30, 22, 21): "Oligodendrocytes",
    (9, 8, 10, 6, 5, 4, 12, 1, 13): "Pyramidals",
}


class SmfishDataset(DownloadableDataset):
    """osmFISH data of mouse cortex cells: 33 genes, spatial coordinates, clusters.

    Parameters
    ----------
    save_path
        Folder of ``osmFISH_SScortex_mouse_all_cell.loom``.
    use_high_level_cluster
        Merge the clusters into six major cell types ("Astrocytes",
        "Endothelials", "Inhibitory", "Microglias", "Oligodendrocytes",
        "Pyramidals") and keep only the cells of these types.
    delayed_populating
        Do not read the file in the constructor.
    """

    def __init__(
        self,
        save_path: str = "data/",
        use_high_level_cluster: bool = True,
        delayed_populating: bool = False,
    ):
        self.use_high_level_cluster = use_high_level_cluster
        super().__init__(
            "http://linnarssonlab.org/osmFISH/osmFISH_SScortex_mouse_all_cells.loom",
            "osmFISH_SScortex_mouse_all_cell.loom",
            save_path,
            delayed_populating=delayed_populating,
        )

    def populate(self) -> None:
        """Read the loom file, name the clusters, optionally merge them."""
        logger.info("Loading smFISH dataset")
        path = data_file(self.save_path, self.filenames[0])
        try:
            import loompy  # imported here: it starts numba, which changes torch's threads

            with loompy.connect(path, mode="r", validate=False) as ds:
                data = np.asarray(ds[:, :]).T
                gene_names = ds.ra["Gene"]
                labels = np.asarray(ds.ca["ClusterID"]).ravel().astype(np.int64)
                cluster_names = np.asarray(ds.ca["ClusterName"]).astype(str)
                x_coord = np.asarray(ds.ca["X"]).reshape(-1, 1)
                y_coord = np.asarray(ds.ca["Y"]).reshape(-1, 1)
        except (OSError, KeyError, ValueError) as error:
            raise unreadable(path, error) from error
        largest = max(int(labels.max()), max(max(ids) for ids in _MAJOR_CLUSTERS))
        cell_types = np.full(largest + 1, "", dtype=object)
        present, first = np.unique(labels, return_index=True)
        cell_types[present] = cluster_names[first]
        self.populate_from_data(
            X=data,
            labels=labels,
            gene_names=checked_names(gene_names, "gene names", path),
            cell_types=cell_types.astype(str),
            cell_attributes_dict={"x_coord": x_coord, "y_coord": y_coord},
            remap_attributes=False,
        )
        if self.use_high_level_cluster:
            self.map_cell_types(_MAJOR_CLUSTERS)
            self.filter_cell_types(list(_MAJOR_CLUSTERS.values()))
        self.remap_categorical_attributes()
